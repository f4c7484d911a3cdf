"""The fork server: a warm, single-threaded process that forks one child per Python step.

Protocol (JSON lines): the runner writes `{"job": ID, ...payload}` on stdin; the server answers
`{"job": ID, "pid": PID}` when the child is forked and `{"job": ID, "exit": CODE}` when it ends
(CODE is negative for a signal). Closing stdin stops the server, killing any child still running.
Children run in their own process group so the runner can kill a step and everything it started.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import os
import select
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

from mlops_nocode.runtime.context import StepContext


def run_step(payload: dict[str, Any]) -> int:
    """Inside the child: call the step function and write its result; return the exit code."""
    result_path = Path(payload["result"])
    events = open(payload["events"], "a", encoding="utf-8")  # noqa: SIM115 - closed by os._exit
    try:
        import logging

        logger = logging.getLogger(f"mlops.step.{payload['step']}")
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.handlers[:] = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False
        module_name, func_name = payload["entrypoint"].split(":")
        func = getattr(importlib.import_module(module_name), func_name)
        kwargs = dict(payload["kwargs"])
        ctx = StepContext(
            payload["step"],
            payload["run_id"],
            Path(payload["output_dir"]),
            payload["attempt"],
            logger,
            events,
        )
        sig = inspect.signature(func)
        if "ctx" in sig.parameters or any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
            kwargs["ctx"] = ctx
        value = func(**kwargs)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise TypeError(
                f"step function returned {type(value).__name__}; it must return a dict of outputs"
            )
        text = json.dumps({"outputs": value}, default=_jsonable)
        code = 0
    except SystemExit as e:
        text = json.dumps({"error": f"step called sys.exit({e.code!r})"})
        code = 1
    except BaseException as e:
        traceback.print_exc()
        text = json.dumps({"error": f"{type(e).__name__}: {e}"})
        code = 1
    tmp = result_path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, result_path)
    return code


def _jsonable(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return {"__path__": os.fspath(value)}
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"output value of type {type(value).__name__} is not JSON-serialisable")


def _child(payload: dict[str, Any]) -> None:
    os.setpgid(0, 0)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)
    signal.set_wakeup_fd(-1)
    code = 1
    try:
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        log = os.open(payload["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.environ.update(payload.get("env", {}))
        if payload.get("cwd"):
            os.chdir(payload["cwd"])
        code = run_step(payload)
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def serve(preload: list[str]) -> None:
    """The server loop; returns when stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for module in preload:
        with contextlib.suppress(Exception):
            importlib.import_module(module)
    rfd, wfd = os.pipe()
    os.set_blocking(wfd, False)
    signal.set_wakeup_fd(wfd)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    out = sys.stdout
    stdin = sys.stdin.fileno()
    jobs: dict[int, str] = {}
    buf = b""
    out.write(json.dumps({"ready": os.getpid()}) + "\n")
    out.flush()
    open_ = True
    while open_ or jobs:
        ready, _, _ = select.select([stdin, rfd] if open_ else [rfd], [], [], 1.0 if open_ else 0.05)
        if rfd in ready:
            with contextlib.suppress(BlockingIOError):
                os.read(rfd, 4096)
        if stdin in ready:
            chunk = os.read(stdin, 1 << 16)
            if not chunk:
                open_ = False
                for pid in jobs:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(pid, signal.SIGKILL)
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                payload = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    _child(payload)
                with contextlib.suppress(PermissionError, ProcessLookupError):
                    os.setpgid(pid, pid)
                jobs[pid] = payload["job"]
                out.write(json.dumps({"job": payload["job"], "pid": pid}) + "\n")
                out.flush()
        while jobs:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            job = jobs.pop(pid, None)
            if job is not None:
                code = os.waitstatus_to_exitcode(status)
                out.write(json.dumps({"job": job, "exit": code}) + "\n")
                out.flush()


if __name__ == "__main__":
    serve(sys.argv[1:])
