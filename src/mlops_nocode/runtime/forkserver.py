"""Runner side of the fork server: submit Python steps, learn their pids and exit codes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

OnExit = Callable[[str, int], None]


class ForkServerError(RuntimeError):
    """The fork server could not start or died."""


class ForkServer:
    """One warm zygote process; `submit` forks a child per job and `on_exit(job, code)` reports its end."""

    def __init__(self, on_exit: OnExit, preload: list[str], stderr_path: Path | None = None) -> None:
        self.on_exit = on_exit
        self.preload = preload
        self.stderr_path = stderr_path
        self.pids: dict[str, int] = {}
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._stdin: IO[bytes] | None = None
        self._ready = threading.Event()

    def start(self) -> None:
        err: IO[bytes] | int = subprocess.DEVNULL
        if self.stderr_path is not None:
            err = open(self.stderr_path, "ab")  # noqa: SIM115 - owned by the child process
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "mlops_nocode.runtime.zygote", *self.preload],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            close_fds=True,
        )
        if not isinstance(err, int):
            err.close()
        self._stdin = self._proc.stdin
        threading.Thread(target=self._read, name="forkserver-reader", daemon=True).start()

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for raw in self._proc.stdout:
            msg = json.loads(raw)
            if "ready" in msg:
                self._ready.set()
                continue
            job = msg["job"]
            if "pid" in msg:
                with self._lock:
                    if job in self._pending:
                        self.pids[job] = msg["pid"]
            else:
                with self._lock:
                    self._pending.discard(job)
                    self.pids.pop(job, None)
                self.on_exit(job, msg["exit"])
        self._ready.set()
        with self._lock:
            lost = list(self._pending)
            self._pending.clear()
        for job in lost:
            self.on_exit(job, -int(signal.SIGKILL))

    def submit(self, job: str, payload: dict[str, Any]) -> None:
        """Fork a child running `payload` (see zygote.run_step for its keys)."""
        if self._proc is None:
            self.start()
        if self._proc is None or self._proc.poll() is not None or self._stdin is None:
            raise ForkServerError("the step fork server is not running")
        with self._lock:
            self._pending.add(job)
        data = (json.dumps({**payload, "job": job}) + "\n").encode()
        try:
            self._stdin.write(data)
            self._stdin.flush()
        except (BrokenPipeError, OSError) as e:
            with self._lock:
                self._pending.discard(job)
            raise ForkServerError(f"the step fork server died: {e}") from None

    def wait_ready(self, timeout: float = 60.0) -> bool:
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
        """Stop the server; it kills any child still running."""
        if self._proc is None:
            return
        with contextlib.suppress(OSError):
            if self._stdin is not None:
                self._stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
