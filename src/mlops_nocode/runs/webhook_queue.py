"""The durable webhook delivery queue: one `webhook_queue` row per run end per webhook.

States: `pending` (due at `next_attempt_at`) -> `delivering` (claimed by one dispatcher: `claimed_by`,
`claimed_at`) -> `delivered`, or back to `pending` with an exponential backoff, or `failed` after
`WEBHOOK_ATTEMPTS` attempts (or at once when the host is refused or the secret unreadable). A claim older
than `WEBHOOK_LEASE` belongs to a dispatcher that died: the row is due again, and the lost attempt is
logged as such. Each attempt is written to the per-run delivery log (`webhook_deliveries`).

Claims are atomic: on PostgreSQL `SELECT ... FOR UPDATE SKIP LOCKED` then UPDATE in one transaction (as
runs are claimed), so dispatchers on any number of hosts never wait on each other's candidate; on SQLite
the transaction starts with BEGIN IMMEDIATE, so the SELECT and UPDATE run under the write lock. Results
are recorded only while the claim is still the dispatcher's own (a fenced UPDATE).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from mlops_nocode.runs.db import Database
from mlops_nocode.runs.models import DeliveryRow, QueuedDelivery, WebhookRow
from mlops_nocode.settings import Settings


@dataclass(frozen=True, slots=True)
class Claim:
    """A delivery a dispatcher owns until it records the result (or its lease expires)."""

    id: int
    webhook_id: str
    run_id: str
    event: str
    body: bytes
    attempt: int
    url: str
    sealed_secret: str
    kind: str = "webhook"  # webhook, n8n, slack, email (runs.webhooks)
    to: tuple[str, ...] = ()  # email: the recipients


def is_ok(status: int | None, error: str | None) -> bool:
    """Whether an attempt succeeded: a 2xx answer and no error."""
    return error is None and status is not None and 200 <= status < 300


class DeliveryQueue:
    """Enqueue, claim and settle webhook deliveries in the gateway's database."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db, self.settings = db, settings

    def enqueue(self, run_id: str, event: str, bodies: dict[str, str]) -> int:
        """Queue `bodies` ({webhook id: JSON body}) for delivery now; returns how many were new.

        Exactly once per run, webhook and event (a unique constraint; a second call changes nothing)."""
        if not bodies:
            return 0
        now = time.time()
        rows = [
            {
                "webhook_id": hook_id,
                "run_id": run_id,
                "event": event,
                "body": body,
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for hook_id, body in bodies.items()
        ]
        insert = pg_insert if self.db.dialect == "postgresql" else sqlite_insert
        statement = (
            insert(QueuedDelivery)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["run_id", "webhook_id", "event"])
            .returning(QueuedDelivery.id)  # rowcount is not reliable for multi-row inserts (psycopg)
        )
        with self.db.session() as s:
            return len(s.execute(statement).all())

    def claim(self, dispatcher_id: str) -> Claim | None:
        """The most overdue delivery, now `delivering` for this dispatcher; None when nothing is due.

        Rows whose lease expired count their lost attempt (logged); those out of attempts, or whose
        webhook was deleted, are failed on the way."""
        now = time.time()
        due = or_(
            and_(QueuedDelivery.state == "pending", QueuedDelivery.next_attempt_at <= now),
            and_(
                QueuedDelivery.state == "delivering",
                QueuedDelivery.claimed_at < now - self.settings.webhook_lease,
            ),
        )
        candidate = (
            select(QueuedDelivery)
            .where(due)
            .order_by(QueuedDelivery.next_attempt_at, QueuedDelivery.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        with self.db.session() as s:
            while (row := s.scalars(candidate).first()) is not None:
                row.updated_at = now
                if row.state == "delivering":  # its dispatcher died (or hung) during the attempt
                    lost = (
                        f"no answer recorded: dispatcher {row.claimed_by} stopped during this attempt "
                        f"(its {self.settings.webhook_lease:g}s lease expired)"
                    )
                    s.add(_log(row, row.attempts, None, lost, now))
                    row.last_status, row.last_error, row.claimed_by, row.claimed_at = None, lost, None, None
                    if row.attempts >= self.settings.webhook_attempts:
                        row.state = "failed"
                        s.flush()
                        continue
                hook = s.get(WebhookRow, row.webhook_id)
                if hook is None:
                    row.state, row.last_error = "failed", "the webhook was deleted before this delivery"
                    s.flush()
                    continue
                row.state, row.claimed_by, row.claimed_at = "delivering", dispatcher_id, now
                row.attempts += 1
                return Claim(
                    row.id,
                    row.webhook_id,
                    row.run_id,
                    row.event,
                    row.body.encode(),
                    row.attempts,
                    hook.url,
                    hook.secret,
                    hook.kind,
                    tuple(hook.recipients.split(",")) if hook.recipients else (),
                )
        return None

    def settle(
        self, claim: Claim, dispatcher_id: str, status: int | None, error: str | None, final: bool = False
    ) -> str:
        """Log the attempt and move the delivery on: `delivered`, `pending` again after the backoff
        (WEBHOOK_BACKOFF doubling), or `failed` (out of attempts, or `final`). Returns the new state, or
        "lost" when the claim was no longer this dispatcher's (the attempt is logged all the same)."""
        now = time.time()
        if is_ok(status, error):
            state, next_at = "delivered", now
        elif final or claim.attempt >= self.settings.webhook_attempts:
            state, next_at = "failed", now
        else:
            state = "pending"
            next_at = now + self.settings.webhook_backoff * 2 ** (claim.attempt - 1)
        with self.db.session() as s:
            s.add(_log(claim, claim.attempt, status, error, now))
            done = s.execute(
                update(QueuedDelivery)
                .where(
                    QueuedDelivery.id == claim.id,
                    QueuedDelivery.claimed_by == dispatcher_id,
                    QueuedDelivery.state == "delivering",
                    QueuedDelivery.attempts == claim.attempt,
                )
                .values(
                    state=state,
                    next_attempt_at=next_at,
                    last_status=status,
                    last_error=error,
                    claimed_by=None,
                    claimed_at=None,
                    updated_at=now,
                )
            )
            return state if done.rowcount else "lost"  # type: ignore[attr-defined]


def _log(
    of: QueuedDelivery | Claim, attempt: int, status: int | None, error: str | None, ts: float
) -> DeliveryRow:
    """A delivery log entry for one attempt."""
    return DeliveryRow(
        webhook_id=of.webhook_id,
        run_id=of.run_id,
        event=of.event,
        attempt=attempt,
        ok=is_ok(status, error),
        status_code=status,
        error=error,
        ts=ts,
    )
