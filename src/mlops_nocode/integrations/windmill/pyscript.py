"""A Python playbook step as a Windmill Python script: the step's code (or an import of its entrypoint)
followed by a `main` whose arguments are the step's parameters and inputs.

Every value that comes from the spec reaches the generated source as a Python literal written by
`repr()` of a `json.dumps()` text, never pasted as code; names become arguments only when they are plain
Python identifiers. The step's own source is the step's code: it is copied as it is.
"""

from __future__ import annotations

import json
import keyword

from mlops_nocode.spec import Problem
from mlops_nocode.spec.models import Playbook

MARKER = "# mlops-nocode step: "  # first line of a generated script: JSON naming the step and its playbook

_WRAPPER = '''
import json as _mlops_json


def _mlops_main(step_id: str, kwargs: dict) -> dict:
    import inspect
    import logging
    import tempfile
    from pathlib import Path

    class _Ctx:
        """What a step function may take as `ctx` (docs/STEPS.md), on a Windmill worker."""

        def __init__(self) -> None:
            self.step_id = step_id
            self.run_id = "windmill"
            self.attempt = 1
            self.output_dir = Path(tempfile.mkdtemp(prefix="mlops-step-"))
            self.log = logging.getLogger("mlops.step." + step_id)
            self.metrics: list = []

        def metric(self, name: str, value: float, **labels: str) -> None:
            self.metrics.append({"name": name, "value": value, "labels": labels})

    ctx = _Ctx()
    params = inspect.signature(_mlops_step).parameters.values()
    if any(p.name == "ctx" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        kwargs = {**kwargs, "ctx": ctx}
    result = _mlops_step(**kwargs) or {}
    out = {}
    for name, value in result.items():
        if isinstance(value, Path) or (isinstance(value, str) and not Path(value).is_absolute()
                                       and (ctx.output_dir / value).exists()):
            value = str(ctx.output_dir / value)
        out[name] = value
    return out
'''


def arg_problem(name: str, where: str) -> Problem | None:
    """A located problem when `name` cannot be an argument of the script's `main`."""
    if name.isidentifier() and not keyword.iskeyword(name) and not name.lstrip("_").startswith("mlops"):
        return None
    return Problem(
        f"{name[:60]!r} cannot be an argument of a Windmill Python script",
        where,
        "name parameters and inputs with Python identifiers (letters, digits, _), or use --mode gateway",
    )


def script_for(step_id: str, uses: str, playbook: Playbook, args: list[str]) -> str:
    """The Windmill Python script running `playbook` as step `step_id` with arguments `args`."""
    py = playbook.spec.python
    assert py is not None  # callers pass Python playbooks only
    defaults = {
        k: v["default"]
        for k, v in (playbook.spec.parameters.get("properties") or {}).items()
        if isinstance(v, dict) and "default" in v and k.isidentifier()
    }
    marker = json.dumps({"id": step_id, "uses": uses}, ensure_ascii=True)
    lines = [MARKER + marker]
    if py.code is not None:
        lines += [py.code.rstrip("\n"), "", f"_mlops_step = {py.entrypoint}"]
    else:
        module, _, func = py.entrypoint.partition(":")
        lines += [
            "# needs the mlops-nocode package (pip install mlops-nocode) on the Windmill worker",
            "import importlib",
            "",
            f"_mlops_step = getattr(importlib.import_module({module!r}), {func!r})",
        ]
    lines.append(_WRAPPER)
    lines.append(f"_MLOPS_DEFAULTS = _mlops_json.loads({json.dumps(defaults)!r})")
    signature = ", ".join(f"{a}=None" for a in args)
    body = ", ".join(f"{a!r}: {a}" for a in args if not a.startswith("mlops_"))  # mlops_*: for import
    lines += [
        "",
        "",
        f"def main({signature}) -> dict:",
        f"    given = {{k: v for k, v in {{{body}}}.items() if v is not None}}",
        f"    return _mlops_main({step_id!r}, {{**_MLOPS_DEFAULTS, **given}})",
        "",
    ]
    return "\n".join(lines)
