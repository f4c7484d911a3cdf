"""Workers: claim a queued run, execute its plan with the local Runner, stream events to the database
with a heartbeat, record the end. Used as threads inside `mlops up` and as `mlops worker` processes."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_nocode.compiler.plan import Plan
from mlops_nocode.runs.artifacts import records
from mlops_nocode.runs.service import NewEvent, RunService
from mlops_nocode.runs.vault import SecretStore, SecretUnreadable
from mlops_nocode.runtime.events import Event
from mlops_nocode.runtime.runner import Runner
from mlops_nocode.runtime.state import RunResult
from mlops_nocode.runtime.throttle import ThrottleConfigError, Throttler
from mlops_nocode.settings import Settings

if TYPE_CHECKING:
    from mlops_nocode.runs.webhooks import Notifier

log = logging.getLogger("mlops_nocode.worker")
MAX_DETAILS = 2000


def worker_name(suffix: str = "") -> str:
    """host:pid[:suffix], unique among live workers."""
    return f"{socket.gethostname()}:{os.getpid()}" + (f":{suffix}" if suffix else "")


def failure_details(result: RunResult) -> str | None:
    """Why a run did not succeed, naming each failed step and its error."""
    if result.status == "succeeded":
        return None
    if result.status == "cancelled":
        return "cancelled"
    parts = [f"step {sid} failed: {s.error}" for sid, s in result.steps.items() if s.status == "failed"]
    text = "; ".join(parts) or "the run failed"
    return text if len(text) <= MAX_DETAILS else text[: MAX_DETAILS - 1] + "…"


class _Reporter:
    """Buffers a run's events and, on its own thread, writes them with a heartbeat every tick."""

    def __init__(self, service: RunService, run_id: str, worker_id: str, tick: float, runner: Runner) -> None:
        self.service, self.run_id, self.worker_id, self.tick, self.runner = (
            service,
            run_id,
            worker_id,
            tick,
            runner,
        )
        self.seq = service.next_seq(run_id)
        self.lost = False
        self.cancel_requested = False
        self._buf: list[NewEvent] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"report-{run_id}", daemon=True)

    def __call__(self, event: Event) -> None:
        with self._lock:
            self._buf.append(NewEvent(event.type, event.step, event.data, event.ts))

    def start(self) -> None:
        self._thread.start()

    def flush(self) -> None:
        with self._lock:
            batch, self._buf = self._buf, []
        try:
            state = self.service.beat(self.run_id, self.worker_id, batch, self.seq)
        except Exception:  # e.g. the database is busy: keep the events for the next tick
            log.exception("cannot report run %s", self.run_id)
            with self._lock:
                self._buf[:0] = batch
            return
        self.seq += len(batch) if state is not None else 0
        if state is None and not self.lost:
            self.lost = True
            log.warning("run %s was taken over elsewhere; stopping it here", self.run_id)
            self.runner.cancel()
        elif state and not self.cancel_requested:
            self.cancel_requested = True
            self.runner.cancel()

    def _loop(self) -> None:
        while not self._stop.wait(self.tick):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.flush()


class Worker:
    """One worker loop. `stop()` (any thread) ends it; a run in progress is given back to the queue."""

    def __init__(
        self,
        service: RunService,
        settings: Settings,
        name: str | None = None,
        secrets: SecretStore | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.service = service
        self.settings = settings
        self.secrets = secrets
        self.notifier = notifier
        self.id = name or worker_name()
        self._stop = threading.Event()
        self._runner: Runner | None = None
        self._last_recovery = 0.0

    def stop(self) -> None:
        self._stop.set()
        runner = self._runner
        if runner is not None:
            runner.cancel()

    def recover(self) -> None:
        """Re-queue (or fail) runs whose worker died; every worker does it now and then."""
        requeued, ended = self.service.recover(self.settings.run_stale_after, self.settings.max_run_attempts)
        if requeued or ended:
            log.warning("recovered runs of dead workers: %d re-queued, %d ended", requeued, len(ended))
        for run_id in ended:
            self._ended(run_id)

    def run_forever(self) -> None:
        """Claim and execute runs until stopped."""
        while not self._stop.is_set():
            try:
                now = time.monotonic()
                if now - self._last_recovery >= min(self.settings.run_stale_after / 2, 5.0):
                    self._last_recovery = now
                    self.recover()
                claimed = self.service.claim(self.id)
            except Exception:
                log.exception("worker %s cannot reach the database", self.id)
                self._stop.wait(1.0)
                continue
            if claimed is None:
                self._stop.wait(self.settings.poll_seconds)
                continue
            self.execute(claimed)

    def execute(self, claimed: dict[str, Any]) -> None:
        """Run one claimed run to its end (or give it back when the worker is stopping)."""
        run_id = claimed["id"]
        home = self.settings.home
        if claimed["attempts"] > 1:  # keep the files of the interrupted attempt beside the new one
            old = home / "runs" / run_id
            if old.exists():
                old.rename(_free(home / "runs" / f"{run_id}.attempt-{claimed['attempts'] - 1}"))
        try:
            throttle: Throttler | None = Throttler.from_env()
        except ThrottleConfigError:
            throttle = None
        status, details, outputs, artifacts = "failed", None, None, None
        reporter: _Reporter | None = None
        try:
            plan = Plan.from_json(claimed["plan"])
            runner = Runner(plan, home=home, run_id=run_id, throttle=throttle, environ=self._environ(plan))
            reporter = _Reporter(
                self.service, run_id, self.id, min(self.settings.heartbeat_seconds, 0.5), runner
            )
            runner.sink = reporter
            self._runner = runner
            reporter.start()
            if self._stop.is_set():
                runner.cancel()
            result = runner.run()
            status, details, outputs = result.status, failure_details(result), result.outputs
            artifacts = records(plan, result)
        except SecretUnreadable as e:
            details = str(e)
        except Exception as e:
            log.exception("run %s failed inside the worker", run_id)
            details = f"internal error in worker {self.id}: {type(e).__name__}: {e}"
        finally:
            self._runner = None
            if reporter is not None:
                reporter.close()
        if reporter is not None and reporter.lost:
            return
        user_cancel = reporter is not None and reporter.cancel_requested
        if status == "cancelled" and self._stop.is_set() and not user_cancel:
            self.service.requeue(run_id, self.id)
            return
        if status == "cancelled":
            details = "cancelled on request"
        if self.service.finish(run_id, self.id, status, details, outputs, artifacts):
            self._ended(run_id)

    def _ended(self, run_id: str) -> None:
        if self.notifier is not None:
            self.notifier.run_ended(run_id)

    def _environ(self, plan: Plan) -> dict[str, str]:
        """The Runner's environment: this process's, plus the stored secrets the plan's steps reference
        (decrypted here, at the last moment; the Runner gives each step only its own and redacts them)."""
        environ = dict(os.environ)
        if self.secrets is not None:
            environ.update(self.secrets.values(name for step in plan.steps for name in step.secrets))
        return environ


def _free(path: Path) -> Path:
    n, candidate = 1, path
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.{n}")
    return candidate


class WorkerThreads:
    """N worker threads inside the gateway process."""

    def __init__(
        self,
        service: RunService,
        settings: Settings,
        count: int,
        secrets: SecretStore | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.workers = [
            Worker(service, settings, worker_name(f"t{i}"), secrets, notifier) for i in range(count)
        ]
        self.threads = [
            threading.Thread(target=w.run_forever, name=f"worker-{i}", daemon=True)
            for i, w in enumerate(self.workers)
        ]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def stop(self, timeout: float = 10.0) -> None:
        for w in self.workers:
            w.stop()
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
