"""What runs on a Ray node for one attempt (imported by the Ray worker, never by the driver's hot path).

A Python step's function is called inside the Ray worker itself (no process per step), through the same
`run_step` as a local step (runtime/stepcall.py), with the step's environment, working folder and
`sys.stdout`/`sys.stderr` swapped in for the call and restored after it (a Ray worker runs one task at
a time and is reused). A command step runs as a child process in its own process group behind a small
watcher that the kernel signals when the Ray worker dies (PR_SET_PDEATHSIG), and a sentinel in the group
that the kernel signals when the watcher dies (Ray kills a dead worker's children, the watcher among
them): either kills the whole group, so a force-cancelled task or a killed worker leaves no process of
the step behind.

Logs and metrics are written to the attempt's files, which the driver sees (shared storage): its
LogFollower turns them into live `log` events, redacted there, as for local steps.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

DEVICE_VARS = ("CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES")
"""The devices Ray gave this task (its worker's environment), never the driver's."""
GRACE_S = 5.0
"""How long a command step has to exit after SIGTERM (a task cancelled without force) before SIGKILL."""

_node: dict[str, str] | None = None

_WATCH = r"""
import ctypes, os, signal, sys
parent = int(sys.argv[1])
prctl = ctypes.CDLL(None, use_errno=True).prctl
def gone(*_):
    os.killpg(0, signal.SIGKILL)
signal.signal(signal.SIGUSR2, gone)
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the step gets it (a graceful cancel); SIGKILL follows
signal.signal(signal.SIGINT, signal.SIG_IGN)
prctl(1, signal.SIGUSR2)  # PR_SET_PDEATHSIG: the Ray worker died
if os.getppid() != parent:
    gone()
me = os.getpid()
sentinel = os.fork()
if sentinel == 0:  # Ray kills a dead worker's children (this watcher): the sentinel kills the group then
    prctl(1, signal.SIGUSR2)
    if os.getppid() != me:
        gone()
    while True:
        signal.pause()
pid = os.fork()
if pid == 0:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_DFL)
    try:
        os.execv(sys.argv[2], sys.argv[3:])
    except OSError as e:
        print(f"cannot run {sys.argv[2]}: {e.strerror}", file=sys.stderr)
        os._exit(126)
while True:
    try:
        _, status = os.waitpid(pid, 0)
        break
    except ChildProcessError:
        os._exit(1)
    except InterruptedError:
        continue
os.kill(sentinel, signal.SIGKILL)
code = os.waitstatus_to_exitcode(status)
if code < 0:
    signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
os._exit(code)
"""


def node_info() -> dict[str, str]:
    """Where this worker runs: the Ray node's id, its IP address and the host's name."""
    global _node
    if _node is None:
        import ray

        _node = {
            "id": ray.get_runtime_context().get_node_id(),
            "ip": ray.util.get_node_ip_address(),  # type: ignore[no-untyped-call]
            "hostname": socket.gethostname(),
        }
    return _node


def _mark(payload: dict[str, Any], node: dict[str, str]) -> None:
    """Leave the node beside the attempt's files, so that the driver can name it if the node is lost."""
    with contextlib.suppress(OSError), open(payload["node_file"], "w", encoding="utf-8") as f:
        f.write(json.dumps(node))
    with contextlib.suppress(OSError):
        os.makedirs(payload["tmp"], mode=0o700, exist_ok=True)


def run_python(payload: dict[str, Any]) -> tuple[int, str, dict[str, str]]:
    """Call a Python step's function in this worker; (exit code, JSON result, node)."""
    from mlops_nocode.runtime.stepcall import run_step

    node = node_info()
    _mark(payload, node)
    env: dict[str, str] = payload["env"]
    saved_env = {k: os.environ.get(k) for k in env}
    saved_out, saved_err, saved_path = sys.stdout, sys.stderr, list(sys.path)
    cwd = os.getcwd()
    log = open(payload["log"], "a", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
    try:
        os.environ.update(env)
        sys.path[:0] = [p for p in payload.get("python_path", ()) if p not in sys.path]
        with contextlib.suppress(OSError):
            os.chdir(payload["cwd"])
        sys.stdout = sys.stderr = log
        code, text = run_step(payload)
    finally:
        sys.stdout, sys.stderr = saved_out, saved_err
        log.close()
        sys.path[:] = saved_path
        with contextlib.suppress(OSError):
            os.chdir(cwd)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return code, text, node


def run_command(payload: dict[str, Any]) -> tuple[int, str | None, dict[str, str]]:
    """Run a command step as a child of this worker, in its own process group; (exit code, None, node).

    A cancel without force interrupts this task (KeyboardInterrupt): the step's group gets SIGTERM,
    then SIGKILL after GRACE_S. A forced cancel kills this worker: the watcher kills the group.
    """
    node = node_info()
    _mark(payload, node)
    os.makedirs(payload["output_dir"], exist_ok=True)
    argv = [sys.executable, "-I", "-S", "-c", _WATCH, str(os.getpid()), payload["exe"], *payload["argv"]]
    env = {k: v for k, v in payload["env"].items() if k not in DEVICE_VARS}
    env.update({k: os.environ[k] for k in DEVICE_VARS if k in os.environ})
    with open(payload["log"], "ab") as log:
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=payload["cwd"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        while (code := proc.poll()) is None:  # not proc.wait(): Ray's cancel interrupts between sleeps
            time.sleep(0.05)
    except BaseException:
        _stop(proc)
        raise
    finally:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)  # what the step started and left in its group
    return code, None, node


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
