"""What workers and their Runners do to a claimed run: report events with the heartbeat, record the end,
give it back, and what any process does for runs whose worker died (recovery). Mixed into RunService."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session

from mlops_nocode.runs.db import Database
from mlops_nocode.runs.errors import RunNotFound, RunTaken, SeqGap
from mlops_nocode.runs.eventstats import record_end, record_events, record_success
from mlops_nocode.runs.models import EventRow, RunRow
from mlops_nocode.runtime.redaction import Redactor, redactor_for

REDACTORS_KEPT = 1000  # runs whose secret values are kept in memory for redacting their reports


@dataclass(frozen=True, slots=True)
class Beat:
    """The answer to a report: whether a cancel was asked, and the seq the next event takes."""

    cancel_requested: bool
    next_seq: int


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event waiting to be written."""

    type: str
    step: str | None
    data: dict[str, Any]
    ts: float


class ClaimOps:
    """The worker side of the run service.

    What a Runner reports (events, the end's details and outputs) is redacted again here with the values
    of the vault's secrets the run's steps use, when `secret_values` is set (by the gateway): a defence in
    depth behind the Runner's own redaction, whichever Runner reports and whatever its version."""

    db: Database
    secret_values: Callable[[Iterable[str]], dict[str, str]] | None
    route_secrets: Callable[[], Iterable[str]] | None  # the model routes' key secrets (set by the gateway)
    _redactors: dict[str, Redactor]

    def redactor(self, run_id: str) -> Redactor:
        """Masks the values of the stored secrets that the run's steps use (cached per run)."""
        cached = self._redactors.get(run_id)
        if cached is not None:
            return cached
        if self.secret_values is None:
            return redactor_for(())
        steps = self.plan_of(run_id).get("steps") or []
        names = {str(n) for step in steps for n in step.get("secrets") or ()}
        if self.route_secrets is not None and any(step.get("runtime") == "litellm" for step in steps):
            names.update(self.route_secrets())  # a litellm step's Runner uses the keys of its routes
        try:
            found = redactor_for(self.secret_values(names).values() if names else ())
        except ValueError:  # unreadable (SECRET_KEY changed): the worker fails such a run anyway
            return redactor_for(())
        if len(self._redactors) >= REDACTORS_KEPT:
            self._redactors.clear()
        self._redactors[run_id] = found
        return found

    def plan_of(self, run_id: str) -> dict[str, Any]:
        """The run's plan as stored ({} for an unknown run)."""
        with self.db.read() as c:
            plan = c.scalar(select(RunRow.plan).where(RunRow.id == run_id))
        return plan if isinstance(plan, dict) else {}

    def stale_runs(self, stale_after: float) -> list[str]:
        """The ids of the running runs whose worker has not beaten for `stale_after` seconds."""
        cutoff = time.time() - stale_after
        query = select(RunRow.id).where(RunRow.status == "running", RunRow.heartbeat_at < cutoff)
        with self.db.read() as c:
            return [str(i) for i in c.scalars(query)]

    def report(
        self, run_id: str, worker_id: str, attempt: int, events: list[NewEvent], first_seq: int | None
    ) -> Beat:
        """Write a batch of events (numbered from `first_seq`; those already stored are skipped, so a
        batch sent again after a lost answer is recorded once) and the heartbeat. RunTaken when the run
        is no longer this claim's (recovered elsewhere, or ended)."""
        scrub = self.redactor(run_id)
        with self.db.session() as s:
            row = s.get(RunRow, run_id)
            if row is None:
                raise RunNotFound(run_id)
            if row.worker_id != worker_id or row.attempts != attempt or row.status != "running":
                raise RunTaken(f"run {run_id} is {row.status} and no longer claim {attempt} of {worker_id}")
            stored = int(s.scalar(select(func.max(EventRow.seq)).where(EventRow.run_id == run_id)) or 0)
            start = stored + 1 if first_seq is None else first_seq
            if start > stored + 1:
                raise SeqGap(f"events from seq {start} would leave a gap: the next is {stored + 1}")
            fresh = [e for i, e in enumerate(events) if start + i > stored]
            for i, e in enumerate(fresh, start=max(start, stored + 1)):
                data = scrub.data(e.data) if scrub else e.data
                s.add(EventRow(run_id=run_id, seq=i, type=e.type, step=e.step, data=data, ts=e.ts))
            record_events(s, row, fresh)  # /metrics' step durations and throttler waits
            row.heartbeat_at = time.time()
            return Beat(row.cancel_requested, max(stored, start + len(events) - 1) + 1)

    def finish(
        self,
        run_id: str,
        worker_id: str,
        status: str,
        details: str | None,
        outputs: dict[str, Any] | None,
        artifacts: dict[str, Any] | None = None,
        attempt: int | None = None,
    ) -> bool:
        """Record the end of a run this worker owns (in claim `attempt`, when given)."""
        scrub = self.redactor(run_id)
        self._redactors.pop(run_id, None)  # the run's reports end here
        if scrub:
            details = scrub.text(details) if details else details
            outputs = scrub.data(outputs)
        with self.db.session() as s:
            done = s.execute(
                update(RunRow)
                .where(_owned(run_id, worker_id, attempt))
                .values(
                    status=status,
                    details=details,
                    outputs=outputs,
                    artifacts=artifacts,
                    finished_at=time.time(),
                    heartbeat_at=None,
                )
            )
            if done.rowcount:  # type: ignore[attr-defined]
                _ended(s, run_id)
                if status == "succeeded":
                    record_success(s, run_id)  # its steps' metrics become the pipeline's latest
            return bool(done.rowcount)  # type: ignore[attr-defined]

    def requeue(self, run_id: str, worker_id: str, attempt: int | None = None) -> bool:
        """Give a run back to the queue (a worker shutting down); the claim does not count."""
        with self.db.session() as s:
            done = s.execute(
                update(RunRow)
                .where(_owned(run_id, worker_id, attempt))
                .values(status="queued", worker_id=None, heartbeat_at=None, attempts=RunRow.attempts - 1)
            )
            return bool(done.rowcount)  # type: ignore[attr-defined]

    def recover(self, stale_after: float, max_attempts: int) -> tuple[int, list[str]]:
        """Runs whose worker stopped heartbeating: re-queued, or ended (failed after `max_attempts`
        claims; cancelled when a cancel was asked). Returns (how many re-queued, ids of those ended)."""
        cutoff = time.time() - stale_after
        stale = and_(RunRow.status == "running", RunRow.heartbeat_at < cutoff)
        with self.db.session() as s:
            ended: list[str] = []
            too_many = select(RunRow).where(stale, RunRow.attempts >= max_attempts)
            for row in s.scalars(too_many.with_for_update(skip_locked=True)):
                row.status, row.finished_at, row.heartbeat_at = "failed", time.time(), None
                row.details = (
                    f"its worker stopped (no heartbeat for {stale_after:g}s) on each of {row.attempts} "
                    "attempt(s); giving up"
                )
                ended.append(row.id)
            s.flush()
            ended += s.scalars(
                update(RunRow)
                .where(stale, RunRow.cancel_requested.is_(True))
                .values(
                    status="cancelled", details="cancelled (its worker had stopped)", finished_at=time.time()
                )
                .returning(RunRow.id)
            ).all()
            for run_id in ended:
                _ended(s, run_id)
            requeued = s.execute(
                update(RunRow).where(stale).values(status="queued", worker_id=None, heartbeat_at=None)
            ).rowcount  # type: ignore[attr-defined]
        return int(requeued), ended


def _ended(s: Session, run_id: str) -> None:
    """Count a run's end for /metrics, in the transaction that ends it."""
    row = s.get(RunRow, run_id, populate_existing=True)
    if row is not None:
        record_end(s, row)


def _owned(run_id: str, worker_id: str, attempt: int | None) -> Any:
    cond = and_(RunRow.id == run_id, RunRow.worker_id == worker_id, RunRow.status == "running")
    return cond if attempt is None else and_(cond, RunRow.attempts == attempt)
