"""Runner side of the fork server: submit Python steps, learn their pids and exit codes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from mlops_nocode.runtime.zygote import MAX_DGRAM

OnExit = Callable[[str, int, str | None], None]


class ForkServerError(RuntimeError):
    """The fork server could not start or died."""


class ForkServer:
    """One warm zygote with `idle` pre-forked children; `submit` hands a job to one of them.

    `on_exit(job, code)` is called once per job, from a reader thread, when the step has ended.
    """

    def __init__(
        self,
        on_exit: OnExit,
        preload: list[str],
        stderr_path: Path | None = None,
        idle: int = 3,
        log_dir: Path | None = None,
    ) -> None:
        self.on_exit = on_exit
        self.preload = preload
        self.stderr_path = stderr_path
        self.idle = max(1, idle)
        self.log_dir = log_dir or Path(tempfile.gettempdir())
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
        ctl_r, ctl_w = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        theirs = [jobs_r, res_w, ctl_r, ctl_w]
        err: IO[bytes] | int = subprocess.DEVNULL
        if self.stderr_path is not None:
            err = open(self.stderr_path, "ab")  # noqa: SIM115 - handed to the child process
        fds = ",".join(str(s.fileno()) for s in theirs)
        self._proc = subprocess.Popen(
            [
                sys.executable,
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
        )
        if not isinstance(err, int):
            err.close()
        for s in theirs:
            s.close()
        self._jobs, self._results = jobs_w, res_r
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
                data = self._results.recv(1 << 16)
            except OSError:
                return
            if not data:
                return
            msg = json.loads(data)
            with self._lock:
                if "exit" in msg:
                    job = self._by_pid.pop(msg["pid"], None)
                    if job is None:
                        continue
                else:
                    job = msg["job"]
                    if "done" not in msg:
                        self.pids[job] = msg["pid"]
                        self._by_pid[msg["pid"]] = job
                        continue
                    self._by_pid.pop(self.pids.get(job, -1), None)
                if job not in self._pending:
                    continue
                self._pending.discard(job)
                self.pids.pop(job, None)
            if "exit" in msg:
                self.on_exit(job, msg["exit"], None)
            else:
                self.on_exit(job, msg["done"], msg.get("result") or None)

    def submit(self, job: str, payload: dict[str, Any], spill: Path | None = None) -> None:
        """Hand `payload` (see zygote.run_step for its keys) to an idle child.

        A payload too big for one datagram is written to `spill`, without its `env` and `secrets`, which
        always travel in the datagram so that secret values never touch the disk.
        """
        if self._proc is None:
            self.start()
        if self._proc is None or self._proc.poll() is not None or self._jobs is None:
            raise ForkServerError(
                "the step fork server is not running (see forkserver.log in the run folder)"
            )
        data = json.dumps({**payload, "job": job}).encode()
        if len(data) > MAX_DGRAM:
            if spill is None:
                raise ForkServerError("step payload too large to send")
            private = ("env", "secrets")
            public = {k: v for k, v in payload.items() if k not in private}
            spill.write_text(json.dumps(public), encoding="utf-8")
            kept = {k: payload.get(k, {}) for k in private}
            data = json.dumps({"job": job, "file": str(spill), **kept}).encode()
        with self._lock:
            self._pending.add(job)
        try:
            self._jobs.send(data)
        except OSError as e:
            with self._lock:
                self._pending.discard(job)
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
