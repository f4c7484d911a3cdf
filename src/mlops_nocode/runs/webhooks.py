"""Webhooks: run endings POSTed as JSON, signed with HMAC-SHA256, retried with backoff, each attempt logged.

`X-MLOPS-Signature: sha256=<hex HMAC-SHA256 of the raw body with the webhook's secret>`; the body carries
the event, a delivery id and a timestamp (so receivers can refuse replays). A delivery that does not get
a 2xx answer is tried again after `WEBHOOK_BACKOFF` seconds, doubling, `WEBHOOK_ATTEMPTS` times in all.
Deliveries run on background threads of the process whose worker ended the run (they are not resumed
if that process dies meanwhile).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from mlops_nocode.runs.db import Database
from mlops_nocode.runs.models import DeliveryRow, WebhookRow
from mlops_nocode.runs.service import RunService
from mlops_nocode.runs.vault import SecretStore, SecretUnreadable
from mlops_nocode.settings import Settings

log = logging.getLogger("mlops_nocode.webhooks")
EVENTS = ("run.succeeded", "run.failed", "run.cancelled")
SIGNATURE_HEADER = "X-MLOPS-Signature"


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Hook:
    """A webhook with its decrypted secret (only inside the process that delivers)."""

    id: str
    url: str
    events: tuple[str, ...]
    secret: str


def _hook_json(row: WebhookRow) -> dict[str, Any]:
    return {"id": row.id, "url": row.url, "events": row.events.split(","), "created_at": row.created_at}


def check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("a webhook URL is http:// or https:// with a host")


class WebhookStore:
    """Webhooks (their secrets sealed with the secrets key) and the delivery log."""

    def __init__(self, db: Database, vault: SecretStore) -> None:
        self.db, self.vault = db, vault

    def create(self, url: str, events: list[str], secret: str | None) -> dict[str, Any]:
        """A new webhook; the answer carries its secret (generated when not given), shown only here."""
        check_url(url)
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

    def hooks_for(self, event: str) -> list[Hook]:
        with self.db.session() as s:
            rows = list(s.scalars(select(WebhookRow)))
        out = []
        for r in rows:
            if event in r.events.split(","):
                try:
                    out.append(Hook(r.id, r.url, tuple(r.events.split(",")), self.vault.unseal(r.secret)))
                except SecretUnreadable:
                    log.error("webhook %s: its secret cannot be decrypted (SECRET_KEY changed)", r.id)
        return out

    def record(
        self, hook: Hook, run_id: str, event: str, attempt: int, code: int | None, error: str | None
    ) -> None:
        ok = error is None and code is not None and 200 <= code < 300
        row = DeliveryRow(
            webhook_id=hook.id,
            run_id=run_id,
            event=event,
            attempt=attempt,
            ok=ok,
            status_code=code,
            error=error,
            ts=time.time(),
        )
        with self.db.session() as s:
            s.add(row)

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
    """Sends a run's end to the webhooks that want it, each delivery on its own thread."""

    def __init__(self, store: WebhookStore, runs: RunService, settings: Settings) -> None:
        self.store, self.runs, self.settings = store, runs, settings

    def run_ended(self, run_id: str) -> None:
        """Called once by whoever recorded the end; never raises."""
        try:
            run = self.runs.get(run_id)
            event = f"run.{run['status']}"
            hooks = self.store.hooks_for(event)
        except Exception:
            log.exception("cannot prepare webhooks for run %s", run_id)
            return
        for hook in hooks:
            body = json.dumps(
                {"id": uuid.uuid4().hex, "event": event, "timestamp": time.time(), "run": run}, default=str
            ).encode()
            threading.Thread(
                target=self._deliver, args=(hook, run_id, event, body), name=f"webhook-{hook.id}", daemon=True
            ).start()

    def _deliver(self, hook: Hook, run_id: str, event: str, body: bytes) -> None:
        delay = self.settings.webhook_backoff
        for attempt in range(1, self.settings.webhook_attempts + 1):
            code, error = self._post(hook, event, body)
            try:
                self.store.record(hook, run_id, event, attempt, code, error)
            except Exception:
                log.exception("cannot log a delivery of webhook %s", hook.id)
            if error is None and code is not None and 200 <= code < 300:
                return
            if attempt < self.settings.webhook_attempts:
                time.sleep(delay)
                delay *= 2
        log.warning("webhook %s: gave up on %s of run %s", hook.id, event, run_id)

    def _post(self, hook: Hook, event: str, body: bytes) -> tuple[int | None, str | None]:
        request = urllib.request.Request(
            hook.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "mlops-nocode-webhook",
                "X-MLOPS-Event": event,
                SIGNATURE_HEADER: sign(hook.secret, body),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.settings.webhook_timeout) as resp:
                code = int(resp.status)
            return code, None if 200 <= code < 300 else f"HTTP {code}"
        except urllib.error.HTTPError as e:
            return int(e.code), f"HTTP {e.code}"
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            return None, f"{type(e).__name__}: {reason}"[:500]
