"""Inside a fork-server child: calling one Python step's function with its arguments and `ctx`, and
turning what it returns into the JSON result the Runner reads (see runtime/zygote.py)."""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
import sys
import tempfile
import traceback
import types
from pathlib import Path
from typing import Any

from mlops_nocode.runtime.context import StepContext
from mlops_nocode.runtime.secrets import fill as fill_secrets

_CO_VARKEYWORDS = 0x08  # a code object's flag: the function has a **kwargs parameter


def run_step(payload: dict[str, Any]) -> tuple[int, str]:
    """Inside the child: call the step function; return the exit code and the result as JSON text."""
    try:
        logger = logging.getLogger(f"mlops.step.{payload['step']}")
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.handlers[:] = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False
        func = step_function(payload)
        kwargs = dict(payload["kwargs"])
        if payload.get("secrets"):
            kwargs = fill_secrets(kwargs, payload["secrets"])
        if takes_ctx(func):
            kwargs["ctx"] = StepContext(
                payload["step"],
                payload["run_id"],
                Path(payload["output_dir"]),
                payload["attempt"],
                logger,
                Path(payload["events"]),
            )
        value = func(**kwargs)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise TypeError(
                f"step function returned {type(value).__name__}; it must return a dict of outputs"
            )
        text = json.dumps({"outputs": value}, default=jsonable)
        code = 0
    except SystemExit as e:
        text = json.dumps({"error": f"step called sys.exit({e.code!r})"})
        code = 1
    except BaseException as e:
        traceback.print_exc()
        text = json.dumps({"error": f"{type(e).__name__}: {e}"})
        code = 1
    return code, text


def takes_ctx(func: Any) -> bool:
    """Whether the step function accepts `ctx` (by name or through `**kwargs`).

    A plain function answers from its code object; anything else (a decorated function, a callable
    object, a builtin) through `inspect.signature`, imported only then: `inspect` pulls in `ast`, `dis`
    and `tokenize`, a third of the fork server's import time, paid by every run.
    """
    if isinstance(func, types.FunctionType) and not hasattr(func, "__wrapped__"):
        code = func.__code__
        names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        return "ctx" in names or bool(code.co_flags & _CO_VARKEYWORDS)
    import inspect

    sig = inspect.signature(func)
    return "ctx" in sig.parameters or any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())


INLINE_MODULE = "playbook_code"
"""The module name a playbook's own source (`python.code`) is loaded under, in the step's process."""


def step_function(payload: dict[str, Any]) -> Any:
    """The step's function: `module:function` imported, or a function of the source the playbook carries.

    That source is written to the attempt's private temporary folder and imported from there as a module
    (tracebacks show its lines; classes and pickling find it in sys.modules), in the step's own confined
    process: it is step code like any other, with no more rights.
    """
    if payload.get("code") is None:
        module_name, func_name = payload["entrypoint"].split(":")
        return getattr(importlib.import_module(module_name), func_name)
    name = str(payload.get("entrypoint") or "main")
    folder = payload.get("tmp") or tempfile.mkdtemp(prefix="mlops-code-")
    path = Path(folder) / f"{INLINE_MODULE}.py"
    path.write_text(str(payload["code"]), encoding="utf-8")
    sys.dont_write_bytecode = True
    spec = importlib.util.spec_from_file_location(INLINE_MODULE, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the playbook's code from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[INLINE_MODULE] = module
    spec.loader.exec_module(module)
    func = getattr(module, name, None)
    if not callable(func):
        raise TypeError(f"the playbook's code defines no function {name!r}: define 'def {name}(...)'")
    return func


def jsonable(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return {"__path__": os.fspath(value)}
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"output value of type {type(value).__name__} is not JSON-serialisable")


def warm_up() -> None:
    """Touch, while idle, the memory a step's start touches: after fork every first write to a page
    copies it, and doing that now keeps those page faults off the step's critical path.

    Only what `run_step` does: touching more (every module, the environment, a traceback) cost ~1.3 ms
    of CPU per step here and saved nothing measurable on the step's path, and on 2 cores a pre-forked
    child's CPU is taken from the step that runs beside it (docs/PERFORMANCE.md).
    """
    sample = {"job": "x", "kwargs": {"a": [1, 2.5, "s", None, True]}, "env": {"K": "V"}}
    json.loads(json.dumps(sample))
    logger = logging.getLogger("mlops.step.warmup")
    logger.handlers[:] = [logging.StreamHandler(sys.stderr)]
    logger.handlers[0].setFormatter(logging.Formatter("%(message)s"))
    logger.handlers.clear()
    takes_ctx(run_step)
