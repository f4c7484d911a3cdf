"""The process of a service (`python -m mlops_nocode.runtime.servehost --service NAME`; runtime/services.py
starts it in its own session): it reads its payload from stdin, confines itself like a step (Landlock
grants, scrubbed environment, private TMPDIR), then either builds the ASGI app with `factory(inputs, params)`
and runs it with uvicorn on the listening socket it inherited, or execs the section's command.

Payload: {"app": "module:factory" | "argv": [...], "inputs": {name: path}, "params": {...}, "env": {...},
"secrets": {...}, "grants": [[path, kind]...], "abi": int, "cwd": path, "fd": int (app only)}.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import socket
import sys
import tempfile
from typing import Any

from mlops_nocode.runtime import confine


def _confine(payload: dict[str, Any]) -> None:
    grants = payload.get("grants") or []
    abi = int(payload.get("abi") or 0)
    if grants and abi:
        ruleset = confine.Ruleset(abi)
        ruleset.allow_fd(1, confine.WRITE_FILE, False)  # the log
        for path, kind in grants:
            ruleset.allow(path, kind)
        ruleset.restrict()
        ruleset.close()
    os.environ.clear()
    os.environ.update(payload.get("env") or {})
    tempfile.tempdir = None
    if payload.get("cwd"):
        os.chdir(payload["cwd"])


def _app(payload: dict[str, Any]) -> Any:
    from mlops_nocode.runtime.secrets import fill

    for folder in reversed(payload.get("python_path") or []):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    module, _, name = str(payload["app"]).partition(":")
    factory = getattr(importlib.import_module(module), name)
    params = fill(payload.get("params") or {}, payload.get("secrets") or {})
    return factory(dict(payload.get("inputs") or {}), params)


def main(argv: list[str]) -> int:
    """Run the service; never returns while it serves."""
    payload = json.loads(sys.stdin.buffer.read() or b"{}")
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    for sig in (signal.SIGPIPE, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    try:
        _confine(payload)
    except OSError as e:
        print(f"the service sandbox could not be set up: {e}", file=sys.stderr, flush=True)
        return 1
    if "argv" in payload:
        args = [str(a) for a in payload["argv"]]
        try:
            os.execvpe(args[0], args, os.environ)
        except OSError as e:
            print(f"cannot run {args[0]}: {e.strerror or e}", file=sys.stderr, flush=True)
            return 127
    import uvicorn

    try:
        app = _app(payload)
    except Exception as e:  # the factory's failure ends the service; the step reports the log's end
        print(
            f"the app factory {payload.get('app')} failed: {type(e).__name__}: {e}",
            file=sys.stderr,
            flush=True,
        )
        return 1
    sock = socket.socket(fileno=int(payload["fd"]))  # bound and listening already (services.spawn)
    config = uvicorn.Config(app, log_level="info", access_log=False, lifespan="auto")
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
