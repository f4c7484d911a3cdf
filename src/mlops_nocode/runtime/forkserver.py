"""Runner side of the fork server: submit Python steps, learn their pids and exit codes.

Step code can write on the sockets it shares with the server, so a message counts only when the kernel
says who sent it (SO_PASSCRED): a job's claim only with the job's one-time token, its end only from the
process that claimed it, an exit code only from the server.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from mlops_nocode.runtime.confine import CREDS_SPACE, sender_pid
from mlops_nocode.runtime.zygote import MAX_DGRAM

MAX_RESULT_BYTES = 64 * 1024 * 1024
_FDS_SPACE = socket.CMSG_SPACE(4 * 8)

OnExit = Callable[[str, int, str | None], None]


class ForkServerError(RuntimeError):
    """The fork server could not start or died."""


class ForkServer:
    """One warm zygote with `idle` pre-forked children; `submit` hands a job to one of them.

    `on_exit(job, code)` is called once per job, from a reader thread, when the step has ended. `box`: the
    server's confinement (see zygote.serve), or a function computing it, called once the server's
    process has been started (its interpreter starts meanwhile).
    """

    def __init__(
        self,
        on_exit: OnExit,
        preload: list[str],
        stderr_path: Path | None = None,
        idle: int = 3,
        log_dir: Path | None = None,
        env: dict[str, str] | None = None,
        box: dict[str, Any] | Callable[[], dict[str, Any] | None] | None = None,
    ) -> None:
        self.on_exit = on_exit
        self.preload = preload
        self.stderr_path = stderr_path
        self.idle = max(1, idle)
        self.log_dir = log_dir or Path(tempfile.gettempdir())
        self.env = env
        self.box = box
        self._tokens: dict[str, str] = {}
        self.pids: dict[str, int] = {}
        self._by_pid: dict[int, str] = {}
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._jobs: socket.socket | None = None
        self._results: socket.socket | None = None
        self._ready = threading.Event()
        self._closed = False

    def start(self) -> None:
        jobs_w, jobs_r = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        res_r, res_w = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        res_r.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        ctl_r, ctl_w = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        theirs = [jobs_r, res_w, ctl_r, ctl_w]
        err: IO[bytes] | int = subprocess.DEVNULL
        if self.stderr_path is not None:
            err = open(self.stderr_path, "ab")  # noqa: SIM115 - handed to the child process
        fds = ",".join(str(s.fileno()) for s in theirs)
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-P",  # not the current folder: steps import from PYTHONPATH, spec folders and packages
                "-m",
                "mlops_nocode.runtime.zygote",
                str(self.idle),
                fds,
                str(self.log_dir),
                *self.preload,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            pass_fds=[s.fileno() for s in theirs],
            env=self.env,
        )
        if not isinstance(err, int):
            err.close()
        for s in theirs:
            s.close()
        self._jobs, self._results = jobs_w, res_r
        assert self._proc.stdin is not None
        try:
            box = self.box() if callable(self.box) else self.box  # while the server's interpreter starts
        except BaseException:
            self.close()
            raise
        with contextlib.suppress(OSError):  # a server that died at once is reported by submit
            self._proc.stdin.write(json.dumps({"confine": box}).encode() + b"\n")
            self._proc.stdin.flush()
        threading.Thread(target=self._read_ready, name="forkserver-ready", daemon=True).start()
        threading.Thread(target=self._read_results, name="forkserver-results", daemon=True).start()

    def _read_ready(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        self._proc.stdout.readline()
        self._ready.set()
        self._proc.stdout.read()  # EOF: the server is gone
        self._ready.set()
        if not self._closed:
            self._fail_pending()

    def _fail_pending(self) -> None:
        """The server died: stop what its children were running and fail those steps, saying why."""
        with self._lock:
            lost = [(job, self.pids.get(job)) for job in self._pending]
            self._pending.clear()
        why = json.dumps({"error": "the step fork server died while the step ran (see forkserver.log)"})
        for job, pid in lost:
            if pid is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
            self.on_exit(job, -int(signal.SIGKILL), why)

    def _read_results(self) -> None:
        assert self._results is not None
        while True:
            try:
                data, ancillary, _, _ = self._results.recvmsg(
                    1 << 16, CREDS_SPACE + _FDS_SPACE, socket.MSG_CMSG_CLOEXEC
                )
            except OSError:
                return
            if not data and self._closed:
                return
            fds = _received_fds(ancillary)
            try:
                self._handle(data, sender_pid(ancillary), fds)
            except (ValueError, TypeError, KeyError, AttributeError):
                pass  # not a message of ours: a step wrote on the socket
            finally:
                for fd in fds:
                    with contextlib.suppress(OSError):
                        os.close(fd)

    def _handle(self, data: bytes, sender: int | None, fds: list[int]) -> None:
        msg = json.loads(data)
        if sender is None:
            return
        with self._lock:
            if "exit" in msg:
                if self._proc is None or sender != self._proc.pid:
                    return
                job = self._by_pid.pop(msg["pid"], None)
                if job is None:
                    return
            else:
                job = msg["job"]
                if job not in self._pending:
                    return
                if "done" not in msg:  # a child took the job: it must know the job's token
                    if job in self.pids or msg.get("pid") != sender or msg.get("token") != self._tokens[job]:
                        return
                    self.pids[job] = sender
                    self._by_pid[sender] = job
                    return
                if self.pids.get(job) != sender:
                    return
                self._by_pid.pop(sender, None)
            self._pending.discard(job)
            self._tokens.pop(job, None)
            self.pids.pop(job, None)
        if "exit" in msg:
            self.on_exit(job, int(msg["exit"]), None)
            return
        result = msg.get("result") or None
        if msg.get("memfd"):
            result = _read_result(fds[0]) if fds else None
        self.on_exit(job, int(msg["done"]), result)

    def submit(self, job: str, payload: dict[str, Any], spill: Path | None = None) -> None:
        """Hand `payload` (see stepcall.run_step for its keys) to an idle child.

        A payload too big for one datagram is written to `spill`, without its `env` and `secrets` (and a
        command's `argv` when the step has secrets), which travel in the datagram so that secret values
        never touch the disk.
        """
        if self._proc is None:
            self.start()
        if self._proc is None or self._proc.poll() is not None or self._jobs is None:
            raise ForkServerError(
                "the step fork server is not running (see forkserver.log in the run folder)"
            )
        token = secrets.token_hex(16)
        data = json.dumps({**payload, "job": job, "token": token}).encode()
        if len(data) > MAX_DGRAM:
            if spill is None:
                raise ForkServerError("step payload too large to send")
            private = ("env", "secrets", "argv") if payload.get("secrets") else ("env", "secrets")
            public = {k: v for k, v in payload.items() if k not in private}
            spill.write_text(json.dumps(public), encoding="utf-8")
            kept = {k: payload[k] for k in private if k in payload}
            data = json.dumps({"job": job, "token": token, "file": str(spill), **kept}).encode()
            if len(data) > MAX_DGRAM:
                raise ForkServerError(
                    f"the step's command line, environment and secrets take {len(data)} bytes, over "
                    f"{MAX_DGRAM}: pass large values through inputs (files) instead"
                )
        with self._lock:
            self._pending.add(job)
            self._tokens[job] = token
        try:
            self._jobs.send(data)
        except OSError as e:
            with self._lock:
                self._pending.discard(job)
                self._tokens.pop(job, None)
            raise ForkServerError(f"the step fork server died: {e}") from None

    def wait_ready(self, timeout: float = 120.0) -> bool:
        if self._proc is None:
            self.start()
        return self._ready.wait(timeout)

    def kill(self, job: str, sig: int = signal.SIGKILL) -> None:
        """Signal a job's whole process group; a job that already ended is ignored."""
        with self._lock:
            pid = self.pids.get(job)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)

    def close(self) -> None:
        """Stop the server; it kills every child, running or idle."""
        if self._proc is None:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            if self._proc.stdin is not None:
                self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        for s in (self._jobs, self._results):
            if s is not None:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()


def _received_fds(ancillary: list[tuple[int, int, bytes]]) -> list[int]:
    fds: list[int] = []
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds += array("i", data[: len(data) - len(data) % 4])
    return fds


def _read_result(fd: int) -> str:
    """A result too large for a datagram, from the memory file the step's process sent (read at its size:
    whatever else a step sends instead, nothing here waits on it)."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        return json.dumps({"error": "the step's process sent its result in something that is not a file"})
    if st.st_size > MAX_RESULT_BYTES:
        why = f"the step's result is {st.st_size} bytes of JSON, over the {MAX_RESULT_BYTES} allowed"
        return json.dumps({"error": why + ": return large data as files in the output folder"})
    chunks, offset = [], 0
    while offset < st.st_size:
        chunk = os.pread(fd, st.st_size - offset, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")
