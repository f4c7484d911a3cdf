"""Attempts that an executor drives from a thread of the Runner's process: a sequence of commands
(`terraform init`, `plan`, `apply`...), an HTTP request, a container engine call.

`StepThread` runs the executor's body in a thread and reports the attempt's end once, as a JSON result
(`{"outputs": ...}` or `{"error": ...}`). The body starts processes with `command` (a child of the run's
fork server, confined like a command step: its own process group, a subreaper that kills whatever it
leaves behind) or `process` (a plain child in its own session, for programs that cannot run confined,
such as a container engine). Both stop at the attempt's cancel: SIGTERM asks, SIGKILL forces, and the
whole process group goes.
"""

from __future__ import annotations

import abc
import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from mlops_nocode.runtime.attempt import Attempt, StepFailure, describe_exit
from mlops_nocode.runtime.executors.base import ExecContext
from mlops_nocode.runtime.forkserver import ForkServerError
from mlops_nocode.runtime.sandbox import step_env

Body = Callable[["StepThread"], dict[str, Any]]
"""An executor's work for one attempt: returns the step's outputs (values, or paths of files it made in
the output folder); raises StepFailure with the reason in words."""


class Stopped(StepFailure):
    """The attempt was cancelled or timed out while the body ran."""


class StepThread:
    """One attempt run by an executor's body in a thread (see the module's docstring)."""

    def __init__(self, a: Attempt, ctx: ExecContext, body: Body) -> None:
        self.a, self.ctx, self._body = a, ctx, body
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._job: str | None = None  # the fork-server job running now
        self._proc: subprocess.Popen[bytes] | None = None  # or the plain process
        self._count = 0
        self._thread = threading.Thread(target=self._main, name=f"step {a.job}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def stopping(self) -> bool:
        """Whether the attempt was asked to stop (cancel or timeout): bodies check it between actions."""
        return self._stop.is_set()

    def check(self) -> None:
        """Raise Stopped when the attempt was asked to stop."""
        if self._stop.is_set():
            raise Stopped("stopped")

    def wait(self, seconds: float) -> None:
        """Sleep up to `seconds`, returning early (with Stopped) when the attempt is asked to stop."""
        if self._stop.wait(max(0.0, seconds)):
            raise Stopped("stopped")

    def log(self, text: str) -> None:
        """Append lines to the step's log (followed live and redacted by the Runner)."""
        with open(self.a.log, "a", encoding="utf-8", errors="replace") as f:
            f.write(text if text.endswith("\n") else text + "\n")

    def cancel(self, sig: int) -> None:
        """Stop the attempt: the running process group gets `sig`; the body sees `stopping`."""
        self._stop.set()
        with self._lock:
            job, proc = self._job, self._proc
        if job is not None:
            with contextlib.suppress(ForkServerError, OSError):
                self.ctx.fork_server().kill(job, sig)
        if proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)

    def command(
        self,
        argv: list[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        grants: Iterable[tuple[str, str]] = (),
        secrets: Mapping[str, str] | None = None,
    ) -> int:
        """Run `argv` to its end as a confined child of the fork server (like a command step), its output
        appended to the step's log; its exit code (negative: killed by that signal). `grants`: extra
        (path, "read"|"write"|"exec") the command needs beyond the step's own folders; `env` is added to
        the step's environment; `secrets` are values it gets (never written to a file)."""
        self.check()
        exe = shutil.which(argv[0], path=self.ctx.box.env.get("PATH")) if "/" not in argv[0] else argv[0]
        if not exe:
            raise StepFailure(f"command not found: {argv[0]!r}")
        self._count += 1
        job = f"{self.a.job}~{self._count}"
        tmp = self.a.base.with_name(f"{self.a.base.name}.tmp{self._count}")
        box = self.ctx.box
        own = box.step_grants(self.a.out_dir, tmp, _input_paths(self.a), cwd) if box.confined else []
        extra = {"PYTHONUNBUFFERED": "1", **(env or {}), "MLOPS_RUN_ID": self.ctx.run_id}
        extra["MLOPS_STEP_ID"] = self.a.step.id
        payload = {
            "step": self.a.step.id,
            "exe": os.path.abspath(exe),
            "argv": argv,
            "secrets": dict(secrets or {}),
            "output_dir": str(self.a.out_dir),
            "log": str(self.a.log),
            "append_log": True,
            "cwd": str(cwd or self.a.out_dir),
            "tmp": str(tmp),
            "grants": [*own, *([p, k] for p, k in grants)] if box.confined else [],
            "env": step_env(box.env, tmp, extra),
        }
        done, box_ = self.ctx.subjobs.expect(job)
        try:
            with self._lock:
                self._job = job
            self.ctx.fork_server().submit(job, payload, tmp.with_name(tmp.name + ".payload.json"))
            if self._stop.is_set():  # a cancel that came before the job had a process
                self.cancel(signal.SIGKILL)
            done.wait()
        except ForkServerError as e:
            self.ctx.subjobs.forget(job)
            raise StepFailure(str(e)) from None
        finally:
            with self._lock:
                self._job = None
            shutil.rmtree(tmp, ignore_errors=True)
        code = int(box_[0])
        self.check()
        return code

    def process(
        self, argv: list[str], *, env: Mapping[str, str], cwd: Path | None = None, stdin: bytes | None = None
    ) -> int:
        """Run `argv` unconfined in its own session (e.g. a container engine, which confines its own
        workload), output appended to the step's log; its exit code. Killed with its group on cancel."""
        self.check()
        with open(self.a.log, "ab") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,
            )
        with self._lock:
            self._proc = proc
        try:
            if self._stop.is_set():
                self.cancel(signal.SIGKILL)
            if stdin is not None and proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.write(stdin)
                    proc.stdin.close()
            code = proc.wait()
        finally:
            with self._lock:
                self._proc = None
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # whatever it left in its group
        self.check()
        return code

    def _main(self) -> None:
        try:
            result: dict[str, Any] = {"outputs": self._body(self)}
            code = 0
        except StepFailure as e:
            result, code = {"error": str(e)}, 1
        except Exception as e:  # an executor's bug still ends the attempt, with its reason
            result, code = {"error": f"{type(e).__name__}: {e}"}, 1
        try:
            text = json.dumps(result, default=str)
        except (TypeError, ValueError) as e:
            text, code = json.dumps({"error": f"the step's outputs are not JSON: {e}"}), 1
        self.ctx.done(self.a.job, code, text)


def failed(what: str, code: int) -> StepFailure:
    """A failure for a command that ended badly: `terraform apply exited with code 1 (see the log)`."""
    return StepFailure(f"{what} {describe_exit(code)} (see the step's log)")


def _input_paths(a: Attempt) -> list[str]:
    return [str(rec["path"]) for rec in a.inputs.values() if rec.get("path")]


class ThreadExecutor(abc.ABC):
    """Base of executors whose attempts are StepThreads: subclasses write `body(job)`."""

    providers: frozenset[str] = frozenset({"local"})

    def __init__(self, ctx: ExecContext) -> None:
        self.ctx = ctx
        self.jobs: dict[str, StepThread] = {}

    def output_files(self, step: Any) -> dict[str, str] | None:
        return None

    @abc.abstractmethod
    def body(self, job: StepThread) -> dict[str, Any]:
        """The attempt's work (see `Body`)."""

    def start(self, a: Attempt) -> None:
        job = self.jobs[a.job] = StepThread(a, self.ctx, self._run)
        job.start()

    def _run(self, job: StepThread) -> dict[str, Any]:
        try:
            return self.body(job)
        finally:
            self.jobs.pop(job.a.job, None)

    def cancel(self, a: Attempt, sig: int) -> None:
        job = self.jobs.get(a.job)
        if job is not None:
            job.cancel(sig)

    def close(self) -> None:
        for job in list(self.jobs.values()):
            job.cancel(signal.SIGKILL)
