"""Running one terraform/tofu command: a scrubbed environment, every printed line masked, a deadline.

Terraform sees only the variables it needs from this process's environment (`PASSED_THROUGH`) plus the
ones a runner gives it (TF_VAR_* secrets, TF_IN_AUTOMATION...): the platform's own credentials
(SECRET_KEY, DATABASE_URL...) never reach it nor the provisioners it starts.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from mlops_nocode.runtime.redaction import LineRedactor, Redactor

__all__ = ["PASSED_THROUGH", "Completed", "clean_env", "run_streamed"]

PASSED_THROUGH = re.compile(
    r"^(PATH|HOME|USER|LOGNAME|LANG|LC_[A-Z_]+|TZ|TMPDIR|SSL_CERT_FILE|SSL_CERT_DIR|"
    r"HTTPS?_PROXY|NO_PROXY|https?_proxy|no_proxy|TF_CLI_CONFIG_FILE|TF_PLUGIN_CACHE_DIR|TF_LOG|"
    r"TF_LOG_PATH|TF_REGISTRY_CLIENT_TIMEOUT)$"
)
TAIL_LINES = 200  # lines kept to explain a failure
GRACE_SECONDS = 30.0  # after SIGINT (terraform then stops cleanly and writes its state), before SIGKILL


@dataclass
class Completed:
    """How a command ended: exit code, whether its deadline passed, and its last lines (masked)."""

    returncode: int
    timed_out: bool
    tail: list[str] = field(default_factory=list)
    stdout: str = ""  # the whole output, masked, when asked for (`capture=True`)

    def error_lines(self, limit: int = 30) -> list[str]:
        """The lines from terraform's first `Error:` on (or the last lines when there is none)."""
        for i, line in enumerate(self.tail):
            if "Error:" in line:
                return [x for x in self.tail[i:] if x.strip()][:limit]
        return [x for x in self.tail if x.strip()][-limit:]


def clean_env(extra: Mapping[str, str], base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment terraform runs with: the passed-through part of `base` (default: this process's
    environment) and `extra` on top."""
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if PASSED_THROUGH.match(k)}
    env.update(extra)
    return env


def run_streamed(
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    redactor: Redactor,
    on_line: Callable[[str], None] | None,
    timeout: float | None,
    capture: bool = False,
) -> Completed:
    """Run `argv`, pass each printed line (stdout and stderr, masked) to `on_line`, stop it at `timeout`
    seconds (SIGINT to its process group, SIGKILL after a grace period)."""
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if not capture else subprocess.PIPE,
        start_new_session=True,  # a timeout stops terraform and the provisioners it started
    )
    timed_out = threading.Event()

    def interrupt() -> None:
        timed_out.set()
        _signal_group(proc, signal.SIGINT)
        try:
            proc.wait(GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)

    timer = threading.Timer(timeout, interrupt) if timeout else None
    if timer:
        timer.daemon = True
        timer.start()
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    lines = LineRedactor()
    captured: list[str] = []
    err_reader: threading.Thread | None = None
    try:
        if capture:
            assert proc.stderr is not None
            err_reader = threading.Thread(target=_drain, args=(proc.stderr, redactor, tail, on_line))
            err_reader.start()
            assert proc.stdout is not None
            captured.append(proc.stdout.read().decode("utf-8", "replace"))
        else:
            assert proc.stdout is not None
            for raw in proc.stdout:
                _emit(lines.push([_decode(raw)], redactor), tail, on_line)
            _emit(lines.flush(redactor), tail, on_line)
        proc.wait()
    finally:
        if timer:
            timer.cancel()
        if proc.poll() is None:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
        if err_reader:
            err_reader.join()
    return Completed(proc.returncode, timed_out.is_set(), list(tail), "".join(captured))


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").rstrip("\r\n")


def _emit(out: list[str], tail: deque[str], on_line: Callable[[str], None] | None) -> None:
    for line in out:
        tail.append(line)
        if on_line:
            on_line(line)


def _drain(
    stream: IO[bytes], redactor: Redactor, tail: deque[str], on_line: Callable[[str], None] | None
) -> None:
    lines = LineRedactor()
    for raw in stream:
        _emit(lines.push([_decode(raw)], redactor), tail, on_line)
    _emit(lines.flush(redactor), tail, on_line)


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
