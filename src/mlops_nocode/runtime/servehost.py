"""The process of a service (`python -m mlops_nocode.runtime.servehost --service NAME`; runtime/services.py
starts it in its own session): it reads its payload from stdin, confines itself like a step (Landlock
grants, scrubbed environment, private TMPDIR), then either builds the ASGI app with `factory(inputs, params)`
and runs it with uvicorn on the listening socket it inherited, or execs the section's command.

Payload: {"app": "module:factory" | "argv": [...], "inputs": {name: path}, "params": {...}, "env": {...},
"secrets": {...}, "grants": [[path, kind]...], "abi": int, "cwd": path, "fd": int (app only)}. In a
Kubernetes pod (`--payload FILE`, providers/k3s_serve.py) the payload is a mounted file, the secrets are
the pod's environment, and the app listens on the payload's `listen` [host, port].
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


def _relay(secrets: list[str]) -> int | None:
    """Fork: the child runs the service with its output on a pipe (returns None there); this process
    copies that output to the log with the secrets' values masked, then returns the child's exit code.
    It ignores SIGTERM (the stop signal reaches the child, whose last words are still relayed)."""
    from mlops_nocode.runtime.redaction import LineRedactor, redactor_for

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.dup2(w, 1)
        os.dup2(w, 2)
        os.close(w)
        return None
    os.close(w)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    redactor, lines_out = redactor_for(secrets), LineRedactor()  # a secret of several lines too

    def write(lines: list[str]) -> None:
        if lines:
            os.write(1, ("\n".join(lines) + "\n").encode("utf-8", errors="replace"))

    pending = b""
    while chunk := os.read(r, 65536):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        if len(pending) > 65536:  # a line that never ends is relayed in pieces
            complete.append(pending)
            pending = b""
        write(lines_out.push([c.decode("utf-8", errors="replace") for c in complete], redactor))
    tail = [pending.decode("utf-8", errors="replace")] if pending else []
    write(lines_out.push(tail, redactor) + lines_out.flush(redactor))
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def main(argv: list[str]) -> int:
    """Run the service; never returns while it serves."""
    if "--payload" in argv:  # in a pod (providers/k3s_serve.py): a mounted file, secrets in the env
        with open(argv[argv.index("--payload") + 1], encoding="utf-8") as f:
            payload = json.load(f)
        payload["env"] = {**os.environ, **(payload.get("env") or {})}
        names = payload.get("secret_names") or []
        payload["secrets"] = {n: os.environ[n] for n in names if n in os.environ}
    else:
        payload = json.loads(sys.stdin.buffer.read() or b"{}")
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    for sig in (signal.SIGPIPE, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    try:
        _confine(payload)
    except OSError as e:
        print(f"the service sandbox could not be set up: {e}", file=sys.stderr, flush=True)
        return 1
    secrets = [str(v) for v in (payload.get("secrets") or {}).values() if v]
    if secrets:
        relayed = _relay(secrets)
        if relayed is not None:
            return relayed
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
    if "fd" in payload:
        sock = socket.socket(fileno=int(payload["fd"]))  # bound and listening already (services.spawn)
    else:
        host, port = payload.get("listen") or ["127.0.0.1", 8000]
        sock = socket.create_server((str(host), int(port)), reuse_port=False)
    config = uvicorn.Config(app, log_level="info", access_log=False, lifespan="auto")
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
