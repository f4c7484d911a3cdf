"""The fork server: a warm process keeping a few pre-forked children ready to run one Python step each.

Fork is slow on big processes (milliseconds once scikit-learn is imported), so it stays off the critical
path: idle children are forked ahead of time, each in its own process group, and block on a shared
datagram socket. A job datagram is taken by exactly one idle child, which tells the server (so it forks a
replacement), reports `{"job", "pid"}`, runs the step and reports `{"job", "done": CODE}` before exiting.
The server reaps every child and reports `{"job", "exit": CODE}` (negative for a signal), which covers
steps that crash before they can report, and command steps (their child execs the command in place).
Closing the server's stdin stops it and kills every child.

Confinement (runtime/sandbox.py): the server drops its capabilities and confines itself to what any step
of the run may touch before it imports the step modules; each idle child builds its step's Landlock ruleset
while it waits, and applies it with the job's own folders once the job arrives, before the step's code
runs. The server and every child are child subreapers: whatever a step started (even with setsid) comes
back to them and is killed when the step ends. The Runner trusts a message only from the process it
names (SO_PASSCRED), and a job's first message only with the job's one-time token.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import importlib
import importlib.machinery
import importlib.util
import json
import os
import select
import signal
import socket
import sys
import tempfile
from array import array
from pathlib import Path
from typing import Any

from mlops_nocode.runtime import confine
from mlops_nocode.runtime.stepcall import run_step, warm_up

MAX_DGRAM = 60_000


def _send(sock: socket.socket, msg: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        sock.send(json.dumps(msg).encode())


def _die_with_parent(server: int) -> None:
    """Ask Linux to SIGKILL this child if the fork server dies (no orphan idle children or steps)."""
    with contextlib.suppress(Exception):
        confine.set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != server:  # the server died before prctl took effect
        os._exit(1)


def _child(
    jobs: socket.socket,
    results: socket.socket,
    ctl: socket.socket,
    log_dir: Path,
    common: list[tuple[int, int, bool]] | None,
    abi: int,
    server: int,
) -> None:
    """An idle child: wait for one job, run it, exit. Never returns."""
    code = 1
    try:
        os.setpgid(0, 0)
        _die_with_parent(server)
        confine.set_subreaper()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        spare_log = log_dir / f".idle-{os.getpid()}.log"
        log = os.open(spare_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        ruleset = None
        if common is not None:  # the rules every step shares, built while idle
            ruleset = confine.Ruleset(abi)
            for fd, rights, is_dir in common:
                ruleset.allow_fd(fd, rights, is_dir)
                os.close(fd)
        warm_up()
        msg = json.loads(jobs.recv(1 << 20))
        jobs.close()
        _send(results, {"job": msg["job"], "pid": os.getpid(), "token": msg.get("token")})
        payload = msg
        if "file" in msg:
            spilled = json.loads(Path(msg["file"]).read_text(encoding="utf-8"))
            payload = {**spilled, **{k: msg[k] for k in ("env", "secrets", "argv") if k in msg}}
        try:
            if payload.get("append_log"):  # one of several commands of an attempt (executors/jobs.py)
                raise OSError
            os.rename(spare_log, payload["log"])
        except OSError:
            log = os.open(payload["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(log, 1)
            os.dup2(log, 2)
            with contextlib.suppress(OSError):
                os.unlink(spare_log)
        try:
            _enter_sandbox(payload, ruleset)
        except OSError as e:
            text = json.dumps({"error": f"the step sandbox could not be set up: {e}"})
            _report(results, ctl, msg["job"], 1, text)
            return
        if "argv" in payload:
            results.close()
            ctl.close()
            _exec(payload)
        for stream in (sys.stdout, sys.stderr):  # what the step prints reaches its log (and events) live
            with contextlib.suppress(AttributeError, ValueError):
                stream.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        me = os.getpid()
        code, text = run_step(payload)
        if os.getpid() != me:  # a process the step forked came back here: only the step itself reports
            os._exit(code)
        confine.kill_descendants()  # what the step left running, in its session or not
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        _report(results, ctl, msg["job"], code, text)
    finally:
        os._exit(code)


def _enter_sandbox(payload: dict[str, Any], ruleset: confine.Ruleset | None) -> None:
    """Give the step its folders, environment and working directory, then confine it (when asked)."""
    tmp = payload.get("tmp")
    if tmp:
        os.mkdir(tmp, 0o700)
    if ruleset is not None:
        os.makedirs(payload["output_dir"], exist_ok=True)
        if "events" in payload:  # where ctx.metric writes
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
            events = os.open(payload["events"], flags, 0o644)
            ruleset.allow_fd(events, confine.WRITE_FILE, False)
            os.close(events)
        ruleset.allow_fd(1, confine.WRITE_FILE, False)  # the log, reopened as /dev/stdout by some tools
        for path, kind in payload.get("grants", []):
            ruleset.allow(path, kind)
        ruleset.restrict()
    env = payload.get("env", {})
    for key in [k for k in os.environ if k not in env]:  # the same as clear() then update(), with a
        del os.environ[key]  # few calls instead of one per variable: most are the server's already
    for key, value in env.items():
        if os.environ.get(key) != value:
            os.environ[key] = value
    tempfile.tempdir = None  # TMPDIR changed: let tempfile look again
    if payload.get("cwd"):
        os.chdir(payload["cwd"])


def _exec(payload: dict[str, Any]) -> None:
    """Become the command step (confined already): the server reports its exit code, and kills whatever it
    leaves behind once it ends. Never returns."""
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)  # as subprocess's restore_signals does
    try:
        os.execve(payload["exe"], payload["argv"], os.environ)
    except OSError as e:
        hint = ""
        if e.errno in (errno.EACCES, errno.EPERM) and payload.get("grants"):
            hint = (
                " (a confined step may run only programs in the system's and Python's folders, on PATH, in "
                "the spec folders and in STEP_SANDBOX_READ: see the step sandbox in docs/STEPS.md)"
            )
        os.write(2, f"cannot run {payload['exe']}: {e.strerror or e}{hint}\n".encode())
        os._exit(127 if e.errno == errno.ENOENT else 126)


def _report(results: socket.socket, ctl: socket.socket, job: str, code: int, text: str) -> None:
    """Send the step's end to the Runner (a large result travels as a memfd), then free this child's slot."""
    head = b'{"job": %s, "done": %d, "result": ' % (json.dumps(job).encode(), code)
    if len(text) > MAX_DGRAM - 200:
        fd = os.memfd_create("result", os.MFD_CLOEXEC)
        with open(fd, "w", encoding="utf-8", closefd=False) as f:
            f.write(text)
        results.sendmsg(
            [head + b'"", "memfd": true}'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array("i", [fd]))]
        )
        os.close(fd)
    else:
        results.send(head + json.dumps(text).encode() + b"}")
    _send(ctl, {"took": job})


def serve(
    preload: list[str], idle: int, fds: tuple[int, int, int, int], log_dir: Path, box: dict[str, Any] | None
) -> None:
    """The server loop; returns when stdin closes, after killing every child (and what they left).

    `box` is None (no confinement) or {"abi", "server": grants, "step": grants} (see runtime/sandbox.py).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    confine.set_subreaper()
    common = None
    if box is not None:
        _prime_import_caches()
        confine.drop_capabilities()
        ruleset = confine.Ruleset(int(box["abi"]))
        for path, kind in box["server"]:
            ruleset.allow(path, kind)
        ruleset.restrict()
        common = confine.open_grants(box["step"])
    for module in preload:
        with contextlib.suppress(Exception):
            importlib.import_module(module)
    jobs, results, ctl_r, ctl_w = (socket.socket(fileno=fd) for fd in fds)
    ctl_r.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    rfd, wfd = os.pipe()
    os.set_blocking(wfd, False)
    signal.set_wakeup_fd(wfd)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: dict[int, bool] = {}  # pid -> has finished its job (a replacement was forked)

    server = os.getpid()

    def spawn() -> None:
        pid = os.fork()
        if pid == 0:
            ctl_r.close()
            os.close(rfd)
            os.close(wfd)
            _child(jobs, results, ctl_w, log_dir, common, int(box["abi"]) if box else 0, server)
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)
        children[pid] = False

    def replace_finished() -> None:
        """Fork a replacement for each child that has reported its step's end to the runner.

        Children report first and ask for their replacement after, so the fork overlaps the runner's
        work instead of delaying it. Only the kernel's word on the sender counts (a step could send
        anything on this socket).
        """
        while True:
            try:
                _, ancillary, _, _ = ctl_r.recvmsg(1 << 16, confine.CREDS_SPACE)
            except BlockingIOError:
                return
            pid = confine.sender_pid(ancillary)
            if pid is not None and children.get(pid) is False:
                children[pid] = True
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)  # what the step left running in the background
                spawn()

    ctl_r.setblocking(False)
    gc.freeze()
    for _ in range(idle):
        spawn()
    sys.stdout.write(json.dumps({"ready": os.getpid()}) + "\n")
    sys.stdout.flush()
    stdin, ctl = sys.stdin.fileno(), ctl_r.fileno()
    poller = select.poll()  # not select(): a sandbox of many grants holds descriptors above 1023
    for fd in (stdin, ctl, rfd):
        poller.register(fd, select.POLLIN)
    while True:
        ready = {fd for fd, _ in poller.poll(1000)}
        if stdin in ready and not os.read(stdin, 1 << 16):
            break
        if rfd in ready:
            with contextlib.suppress(BlockingIOError):
                os.read(rfd, 4096)
        if ctl in ready:
            replace_finished()
        exited, strays = _reap(children)
        if exited:
            replace_finished()  # a child says it finished before it exits: read that first
        if exited or strays:  # a step ended, or a process it left did: end what came back here
            _kill_strays(children)
        for pid, code in exited:
            _send(results, {"pid": pid, "exit": code})  # the Runner ignores it after the step's own end
            if not children.pop(pid):
                spawn()
    for pid in children:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    confine.kill_descendants()
    for pid in list(children):
        (log_dir / f".idle-{pid}.log").unlink(missing_ok=True)


def _kill_strays(children: dict[int, bool]) -> None:
    """Kill the processes that came back to this subreaper when the step that started them died."""
    for pid in confine.children():
        if pid not in children:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _prime_import_caches() -> None:
    """List every import folder now, so imports keep working from folders the sandbox will not let this
    process list (a spec folder that holds MLOPS_HOME is granted entry by entry)."""
    with contextlib.suppress(Exception):
        importlib.machinery.PathFinder.find_spec("mlops-nocode-no-such-module")  # visits every folder


def _reap(children: dict[int, bool]) -> tuple[list[tuple[int, int]], int]:
    """Every child that has exited, with its exit code (negative for a signal), and how many other
    processes (left by steps) were reaped."""
    out, strays = [], 0
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        if pid in children:
            out.append((pid, os.waitstatus_to_exitcode(status)))
        else:
            strays += 1
    return out, strays


def _read_config() -> dict[str, Any]:
    """The first line on stdin: {"confine": ...} (the Runner writes it and nothing else until it closes)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(0, 1 << 20)
        if not chunk:
            sys.exit(0)
        data += chunk
    config: dict[str, Any] = json.loads(data)
    return config


if __name__ == "__main__":
    n_idle = int(sys.argv[1])
    descriptors = tuple(int(x) for x in sys.argv[2].split(","))
    serve(
        sys.argv[4:],
        n_idle,
        (descriptors[0], descriptors[1], descriptors[2], descriptors[3]),
        Path(sys.argv[3]),
        _read_config().get("confine"),
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # every child is gone: skip the interpreter's teardown (the Runner waits for this exit)
