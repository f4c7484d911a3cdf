"""Webhooks: run endings POSTed as JSON, signed with HMAC-SHA256, delivered through a durable queue.

`X-MLOPS-Signature: sha256=<hex HMAC-SHA256 of the raw body with the webhook's secret>`; the body carries
the event, a delivery id and a timestamp (so receivers can refuse replays). When a run ends,
`Notifier.run_ended` only enqueues one delivery per subscribed webhook in the database (exactly once per
run, webhook and event); dispatcher threads (runs.webhook_dispatch, in `mlops up` and `mlops worker`)
claim and POST them, retrying after `WEBHOOK_BACKOFF` seconds, doubling, `WEBHOOK_ATTEMPTS` times in
all, and logging every attempt. Deliveries survive the death of any process: a claim whose dispatcher
died is due again when its `WEBHOOK_LEASE` expires (runs.webhook_queue). URLs are checked against the
host policy (mlops_nocode.hosts) at registration and again, after DNS resolution, at every delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from mlops_nocode.hosts import HostPolicy
from mlops_nocode.runs.db import Database
from mlops_nocode.runs.models import DeliveryRow, WebhookRow
from mlops_nocode.runs.service import RunService
from mlops_nocode.runs.vault import SecretStore
from mlops_nocode.runs.webhook_queue import DeliveryQueue
from mlops_nocode.settings import Settings

log = logging.getLogger("mlops_nocode.webhooks")
RUN_EVENTS = ("run.succeeded", "run.failed", "run.cancelled")
ALERT_EVENTS = ("alert.firing", "alert.resolved")  # Alertmanager's alerts, through POST /api/v1/alerts
EVENTS = RUN_EVENTS + ALERT_EVENTS
SIGNATURE_HEADER = "X-MLOPS-Signature"


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _hook_json(row: WebhookRow) -> dict[str, Any]:
    return {"id": row.id, "url": row.url, "events": row.events.split(","), "created_at": row.created_at}


class WebhookStore:
    """Webhooks (their secrets sealed with the secrets key) and the delivery log."""

    def __init__(self, db: Database, vault: SecretStore, policy: HostPolicy | None = None) -> None:
        self.db, self.vault = db, vault
        self.policy = policy or HostPolicy()

    def create(self, url: str, events: list[str], secret: str | None) -> dict[str, Any]:
        """A new webhook; the answer carries its secret (generated when not given), shown only here.

        HostRefused (a ValueError) when the host policy refuses the URL; ValueError for unknown events."""
        self.policy.check_url(url)
        bad = sorted(set(events) - set(EVENTS))
        if bad or not events:
            raise ValueError(f"unknown events {bad}; use some of {', '.join(EVENTS)}")
        secret = secret or secrets.token_urlsafe(32)
        row = WebhookRow(
            id=secrets.token_hex(8),
            url=url,
            events=",".join(e for e in EVENTS if e in events),
            secret=self.vault.seal(secret),
            created_at=time.time(),
        )
        with self.db.session() as s:
            s.add(row)
        return _hook_json(row) | {"secret": secret}

    def all(self) -> list[dict[str, Any]]:
        """Every webhook (never its secret)."""
        with self.db.session() as s:
            return [_hook_json(r) for r in s.scalars(select(WebhookRow).order_by(WebhookRow.created_at))]

    def delete(self, hook_id: str) -> bool:
        with self.db.session() as s:
            row = s.get(WebhookRow, hook_id)
            if row is None:
                return False
            s.delete(row)
            return True

    def hook_ids_for(self, event: str) -> list[str]:
        """The ids of the webhooks subscribed to `event`."""
        with self.db.session() as s:
            rows = s.execute(select(WebhookRow.id, WebhookRow.events)).all()
        return [hook_id for hook_id, events in rows if event in events.split(",")]

    def deliveries(self, run_id: str) -> list[dict[str, Any]]:
        """Every delivery attempt for a run, in order."""
        with self.db.session() as s:
            rows = s.scalars(select(DeliveryRow).where(DeliveryRow.run_id == run_id).order_by(DeliveryRow.id))
            return [
                {
                    "webhook_id": r.webhook_id,
                    "event": r.event,
                    "attempt": r.attempt,
                    "ok": r.ok,
                    "status_code": r.status_code,
                    "error": r.error,
                    "ts": r.ts,
                }
                for r in rows
            ]


class Notifier:
    """Queues a run's end for the webhooks that want it (the dispatchers deliver it)."""

    def __init__(
        self, store: WebhookStore, runs: RunService, settings: Settings, queue: DeliveryQueue | None = None
    ) -> None:
        self.store, self.runs, self.settings = store, runs, settings
        self.queue = queue or DeliveryQueue(store.db, settings)
        self.on_enqueued: Callable[[], None] | None = None  # e.g. Dispatcher.wake of this process

    def run_ended(self, run_id: str) -> None:
        """Called once by whoever recorded the end: only enqueues (never waits for a receiver)."""
        try:
            run = self.runs.get(run_id)
            event = f"run.{run['status']}"
            bodies = {
                hook_id: json.dumps(
                    {"id": uuid.uuid4().hex, "event": event, "timestamp": time.time(), "run": run},
                    default=str,
                )
                for hook_id in self.store.hook_ids_for(event)
            }
            queued = self.queue.enqueue(run_id, event, bodies)
        except Exception:
            log.exception("cannot queue the webhooks of run %s", run_id)
            return
        if queued and self.on_enqueued is not None:
            self.on_enqueued()

    def alert_received(self, alert: dict[str, Any]) -> tuple[str, int]:
        """Queue one alert (`status`, `fingerprint`, `starts_at`, labels, annotations...) for the webhooks
        subscribed to `alert.<status>`. Returns its id (`alert-<hash of fingerprint and start>`, where
        the delivery log keeps its attempts) and how many deliveries were new: exactly once per
        fingerprint, status and start, however often Alertmanager sends it again."""
        alert_id = alert_key(str(alert["fingerprint"]), str(alert["starts_at"]))
        event = f"alert.{alert['status']}"
        note = {"id": alert_id} | alert
        bodies = {
            hook_id: json.dumps(
                {"id": uuid.uuid4().hex, "event": event, "timestamp": time.time(), "alert": note}, default=str
            )
            for hook_id in self.store.hook_ids_for(event)
        }
        queued = self.queue.enqueue(alert_id, event, bodies)
        if queued and self.on_enqueued is not None:
            self.on_enqueued()
        return alert_id, queued


def alert_key(fingerprint: str, starts_at: str) -> str:
    """The id of one firing of an alert (fits the queue's 64-character run id column)."""
    return "alert-" + hashlib.sha256(f"{fingerprint}|{starts_at}".encode()).hexdigest()[:40]
