"""What workers and their Runners do to a claimed run: report events with the heartbeat, record the end,
give it back, and what any process does for runs whose worker died (recovery). Mixed into RunService."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select, update

from mlops_nocode.runs.db import Database
from mlops_nocode.runs.errors import RunNotFound, RunTaken, SeqGap
from mlops_nocode.runs.models import EventRow, RunRow


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
    """The worker side of the run service."""

    db: Database

    def report(
        self, run_id: str, worker_id: str, attempt: int, events: list[NewEvent], first_seq: int | None
    ) -> Beat:
        """Write a batch of events (numbered from `first_seq`; those already stored are skipped, so a
        batch sent again after a lost answer is recorded once) and the heartbeat. RunTaken when the run
        is no longer this claim's (recovered elsewhere, or ended)."""
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
            for i, e in enumerate(events):
                if start + i > stored:
                    s.add(
                        EventRow(run_id=run_id, seq=start + i, type=e.type, step=e.step, data=e.data, ts=e.ts)
                    )
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
            requeued = s.execute(
                update(RunRow).where(stale).values(status="queued", worker_id=None, heartbeat_at=None)
            ).rowcount  # type: ignore[attr-defined]
        return int(requeued), ended


def _owned(run_id: str, worker_id: str, attempt: int | None) -> Any:
    cond = and_(RunRow.id == run_id, RunRow.worker_id == worker_id, RunRow.status == "running")
    return cond if attempt is None else and_(cond, RunRow.attempts == attempt)
