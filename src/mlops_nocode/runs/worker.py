"""Workers: claim a queued run from the database, execute its plan with the local Runner, which reports
its events, heartbeat and end to the gateway over HTTP with a run token of this claim (runs.reporter).
Used as threads inside `mlops up` and as `mlops worker` processes."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from mlops_nocode.compiler.plan import Plan
from mlops_nocode.runs.artifacts import records
from mlops_nocode.runs.claims import NewEvent
from mlops_nocode.runs.deploying import RemoteDeployments, provider_env
from mlops_nocode.runs.deployrecords import DeploymentRecords
from mlops_nocode.runs.flow import is_remote
from mlops_nocode.runs.listen import QueueListener
from mlops_nocode.runs.reporter import GatewayReporter
from mlops_nocode.runs.runtoken import issue_run_token
from mlops_nocode.runs.scrub import scrub_run_files
from mlops_nocode.runs.service import RunService
from mlops_nocode.runs.vault import SecretStore, SecretUnreadable
from mlops_nocode.runs.workers import Heartbeats
from mlops_nocode.runtime.handoff import step_results
from mlops_nocode.runtime.redaction import redactor_for
from mlops_nocode.runtime.runner import Runner
from mlops_nocode.runtime.s3store import StoreError
from mlops_nocode.runtime.sandbox import RESERVED_ENV
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


class Worker:
    """One worker loop. `stop()` (any thread) ends it; a run in progress is given back to the queue."""

    def __init__(
        self,
        service: RunService,
        settings: Settings,
        secret_key: str,
        name: str | None = None,
        secrets: SecretStore | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.service = service
        self.settings = settings
        self.secret_key = secret_key
        self.secrets = secrets
        self.notifier = notifier
        self.id = name or worker_name()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._runner: Runner | None = None
        self.current: tuple[str, int] | None = None  # (run id, attempt) of the run being executed
        self._gateway_ok_until = 0.0
        self._gateway_warned = False
        self._gateway_down_since = 0.0
        self.on_executed: Callable[[str], None] | None = None  # a run this loop executed ended so

    def wake(self) -> None:
        """Look at the queue now instead of at the next poll (a run was just queued in this process)."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        runner = self._runner
        if runner is not None:
            runner.cancel()

    def run_forever(self) -> None:
        """Claim and execute runs until stopped."""
        while not self._stop.is_set():
            try:
                if not self._gateway_answers():
                    self._stop.wait(1.0)
                    continue
                claimed = self.service.claim(self.id)
            except Exception:
                log.exception("worker %s cannot reach the database", self.id)
                self._stop.wait(1.0)
                continue
            if claimed is None:
                if self._wake.wait(self.settings.poll_seconds):
                    self._wake.clear()
                continue
            self.current = (claimed["id"], claimed["attempts"])
            try:
                status = self.execute(claimed)
            finally:
                self.current = None
            if self.on_executed is not None:
                self.on_executed(status)

    def _gateway_answers(self) -> bool:
        """Whether the gateway the Runners report to answers (checked at most every few seconds while it
        does): a worker whose runs could not report them takes none."""
        now = time.monotonic()
        if self._gateway_ok_until > now:
            return True
        try:
            httpx.get(f"{self.settings.report_url}/health", timeout=2.0).raise_for_status()
        except httpx.HTTPError as e:
            self._gateway_down_since = self._gateway_down_since or now
            if not self._gateway_warned and now - self._gateway_down_since > 10:  # not while it starts
                self._gateway_warned = True
                log.warning(
                    "the gateway does not answer at %s (%s): claiming nothing until it does",
                    self.settings.report_url,
                    e,
                )
            return False
        if self._gateway_warned:
            log.warning("the gateway answers again at %s", self.settings.report_url)
        self._gateway_warned, self._gateway_down_since = False, 0.0
        self._gateway_ok_until = now + 5.0
        return True

    def execute(self, claimed: dict[str, Any]) -> str:
        """Run one claimed run to its end (or give it back when the worker is stopping); returns how it
        ended here: its status, `released` (given back) or `lost` (taken over elsewhere)."""
        run_id, attempt = claimed["id"], claimed["attempts"]
        home = self.settings.home
        old = home / "runs" / run_id
        if old.exists():  # keep the files of an interrupted (or given back) attempt beside the new one
            self._scrub_interrupted(run_id, claimed["plan"])
            earlier = f"{run_id}.attempt-{attempt - 1}" if attempt > 1 else f"{run_id}.released"
            old.rename(_free(home / "runs" / earlier))
        try:
            throttle: Throttler | None = Throttler.from_env()
        except ThrottleConfigError:
            throttle = None
        token = issue_run_token(self.secret_key, run_id, self.id, attempt, self.settings.run_token_ttl)
        reporter = GatewayReporter(
            self.settings.report_url,
            run_id,
            token,
            self._cancel_current,
            tick=min(self.settings.heartbeat_seconds, 0.5),
        )
        status, details, outputs, artifacts = "failed", None, None, None
        remote: RemoteDeployments | None = None
        try:
            plan = Plan.from_json(claimed["plan"])
            part: dict[str, Any] = {}
            if is_remote(plan):  # the steps placed elsewhere run on their deployments' own Runners
                reporter.append = True
                remote = self._remote(run_id, attempt, plan)
                part = {
                    "deployment": remote.here,
                    "results": remote.results,
                    "input_wait": self.settings.deployment_input_wait,
                }
                remote.start()
            runner = Runner(
                plan, home=home, run_id=run_id, throttle=throttle, environ=self._environ(plan), **part
            )
            runner.sink = reporter
            self._runner = runner
            reporter.start()
            if self._stop.is_set():
                runner.cancel()
            result = runner.run()
            status, details, outputs = result.status, failure_details(result), result.outputs
            if remote is not None:
                status, details, outputs = self._with_remote(remote, reporter, status, details, outputs)
            elsewhere = remote.step_outputs() if remote is not None else None
            artifacts = records(plan, result, runner.redactor, elsewhere)
        except (SecretUnreadable, StoreError) as e:
            details = str(e)
        except Exception as e:
            log.exception("run %s failed inside the worker", run_id)
            details = f"internal error in worker {self.id}: {type(e).__name__}: {e}"
        finally:
            self._runner = None
            if remote is not None and not claimed.get("keep"):
                remote.teardown()
            reporter.close()
        if reporter.lost:
            return "lost"
        # When the gateway cannot be reached (it is stopping, or down), the end goes straight to the
        # database this worker claims from, before the run would count as abandoned.
        if status == "cancelled" and self._stop.is_set() and not reporter.cancel_requested:
            if not reporter.release(patience=3.0) and not reporter.lost:
                self._store_unsent(reporter, attempt)
                self.service.requeue(run_id, self.id, attempt)
            return "released"
        if status == "cancelled":
            details = "cancelled on request"
        end = {"status": status, "details": details, "outputs": outputs, "artifacts": artifacts}
        patience = max(2.0, self.settings.run_stale_after / 2)
        if not reporter.finish(end, patience=patience) and reporter.unreachable:
            log.warning("recording the end of run %s in the database directly", run_id)
            self._store_unsent(reporter, attempt)
            if self.service.finish(run_id, self.id, status, details, outputs, artifacts, attempt):
                self._ended(run_id)
        return status

    def _remote(self, run_id: str, attempt: int, plan: Plan) -> RemoteDeployments:
        """The run's remote deployments; their Runners report with tokens of this claim."""
        settings = self.settings

        def token_for(deployment: str) -> str:
            ttl = settings.run_token_ttl
            return issue_run_token(self.secret_key, run_id, self.id, attempt, ttl, deployment)

        return RemoteDeployments(
            DeploymentRecords(self.service.db),
            settings.home,
            run_id,
            plan,
            step_results(settings.home),
            token_for,
            settings.report_url,
            provider_env(),
            settings.deployment_poll_seconds,
        )

    def _with_remote(
        self,
        remote: RemoteDeployments,
        reporter: GatewayReporter,
        status: str,
        details: str | None,
        outputs: dict[str, Any] | None,
    ) -> tuple[str, str | None, dict[str, Any] | None]:
        """The run's end once its remote deployments have ended too (or a cancel came)."""
        remote.wait(lambda: self._stop.is_set() or reporter.cancel_requested or reporter.lost)
        r_status, r_details = remote.outcome()
        outputs = {**remote.outputs(), **(outputs or {})}
        if reporter.cancel_requested or status == "cancelled":
            return "cancelled", "cancelled", outputs
        if r_status == "failed" or status == "failed":
            why = "; ".join(d for d in (r_details, details) if d and d != "cancelled")
            return "failed", why or "the run failed", outputs
        return r_status, r_details, outputs

    def _scrub_interrupted(self, run_id: str, plan_json: dict[str, Any]) -> None:
        """Mask the secrets in what an interrupted attempt left (its Runner may have died before it could):
        with the values this worker gives the run's steps."""
        try:
            plan = Plan.from_json(plan_json)
            environ = self._environ(plan)
            values = [environ[n] for n in self._secret_names(plan) if n in environ]
            scrub_run_files(self.settings.home, run_id, plan_json, redactor_for(values))
        except Exception:
            log.exception("cannot mask the secrets in the files of run %s", run_id)

    def _store_unsent(self, reporter: GatewayReporter, attempt: int) -> None:
        """Write the events the gateway did not receive straight to the database (best effort)."""
        events = [NewEvent(e["type"], e.get("step"), e.get("data") or {}, e["ts"]) for e in reporter.unsent()]
        if events:
            try:
                self.service.report(reporter.run_id, self.id, attempt, events, reporter.seq)
            except Exception:
                log.exception("cannot store %d unsent event(s) of run %s", len(events), reporter.run_id)

    def _cancel_current(self) -> None:
        runner = self._runner
        if runner is not None:
            runner.cancel()

    def _ended(self, run_id: str) -> None:
        if self.notifier is not None:
            self.notifier.run_ended(run_id)

    def _environ(self, plan: Plan) -> dict[str, str]:
        """The Runner's environment: this process's, plus the stored secrets the plan's steps reference
        (decrypted here, at the last moment; the Runner gives each step only its own and redacts them).
        The platform's own variables (DATABASE_URL, SECRET_KEY ...) are left out: a spec that names one
        as a secret gets only a stored secret of that name."""
        environ = {k: v for k, v in os.environ.items() if k not in RESERVED_ENV}
        if self.secrets is not None:
            environ.update(self.secrets.values(self._secret_names(plan)))
        return environ

    def _secret_names(self, plan: Plan) -> list[str]:
        """The secrets the plan's steps reference, and the keys of the model routes its litellm steps may
        call (a route names the secret holding its provider key; the Runner uses only those it needs)."""
        names = [name for step in plan.steps for name in step.secrets]
        if any(step.runtime == "litellm" for step in plan.steps):
            from mlops_nocode.integrations.litellm.routes import key_secret_names

            names += key_secret_names(self.settings.home)
        return names


def _free(path: Path) -> Path:
    n, candidate = 1, path
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.{n}")
    return candidate


class WorkerThreads:
    """N worker threads of one process (the gateway's, or `mlops worker`'s); on PostgreSQL they also
    wake when any process queues a run (LISTEN/NOTIFY)."""

    def __init__(
        self,
        service: RunService,
        settings: Settings,
        count: int,
        secret_key: str,
        secrets: SecretStore | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.service = service
        self.workers = [
            Worker(service, settings, secret_key, worker_name(f"t{i}"), secrets, notifier)
            for i in range(count)
        ]
        self.threads = [
            threading.Thread(target=w.run_forever, name=f"worker-{i}", daemon=True)
            for i, w in enumerate(self.workers)
        ]
        db = service.db
        self.listener = QueueListener(db.url, self.wake) if db.dialect == "postgresql" and count else None
        self.heartbeats = Heartbeats(db, [w.id for w in self.workers], settings.worker_heartbeat_seconds)

    def start(self) -> None:
        self.heartbeats.start()
        for t in self.threads:
            t.start()
        if self.listener is not None:
            self.listener.start()

    def wake(self) -> None:
        """Wake every idle worker (each then tries to claim)."""
        for w in self.workers:
            w.wake()

    def stop(self, timeout: float = 10.0) -> None:
        if self.listener is not None:
            self.listener.stop()
        for w in self.workers:
            w.stop()
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self.heartbeats.stop()
        for w, t in zip(self.workers, self.threads, strict=True):
            current = w.current
            if t.is_alive() and current is not None:  # the process exits without it: give its run back
                log.warning("worker %s did not stop in time: run %s goes back to the queue", w.id, current[0])
                try:
                    self.service.requeue(current[0], w.id, current[1])
                except Exception:
                    log.exception("cannot give run %s back to the queue", current[0])
