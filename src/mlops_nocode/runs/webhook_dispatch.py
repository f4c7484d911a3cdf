"""The webhook dispatcher: threads that claim due deliveries from the queue, POST them signed, and
record each attempt. Started by the gateway (`mlops up`) and by `mlops worker`; any number of them, on
any hosts, share one queue (see runs.webhook_queue)."""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import ssl
import threading
import time

from mlops_nocode.hosts import HostPolicy, HostRefused, pinned_post
from mlops_nocode.runs.notify_format import slack_message, summarize
from mlops_nocode.runs.notify_mail import send_mail
from mlops_nocode.runs.vault import SecretStore, SecretUnreadable
from mlops_nocode.runs.webhook_queue import Claim, DeliveryQueue
from mlops_nocode.runs.webhooks import SIGNATURE_HEADER, sign
from mlops_nocode.settings import Settings

log = logging.getLogger("mlops_nocode.webhooks")
MAX_ERROR = 500


class Dispatcher:
    """`threads` delivery loops in this process; `wake()` makes idle ones look at the queue at once."""

    def __init__(
        self,
        queue: DeliveryQueue,
        vault: SecretStore,
        policy: HostPolicy,
        settings: Settings,
        threads: int = 4,
    ) -> None:
        self.queue, self.vault, self.policy, self.settings = queue, vault, policy, settings
        base = f"{socket.gethostname()}:{os.getpid()}:hooks"
        self.ids = [f"{base}{i}" for i in range(threads)]
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads = [
            threading.Thread(target=self.run_forever, args=(i,), name=f"webhooks-{i}", daemon=True)
            for i in range(threads)
        ]

    def start(self) -> None:
        """Start the delivery threads."""
        for t in self._threads:
            t.start()

    def wake(self) -> None:
        """Something was enqueued: idle threads poll now instead of after POLL_SECONDS."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop claiming; wait up to `timeout` for attempts in flight (an unfinished one is resumed by any
        dispatcher once its lease expires)."""
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def run_forever(self, index: int = 0) -> None:
        """Claim and deliver until stopped."""
        me = self.ids[index]
        while not self._stop.is_set():
            try:
                claim = self.queue.claim(me)
            except Exception:
                log.exception("webhook dispatcher %s cannot reach the database", me)
                self._stop.wait(1.0)
                continue
            if claim is None:
                self._wake.wait(self.settings.poll_seconds)
                self._wake.clear()
                continue
            try:
                self.deliver(claim, me)
            except Exception:  # the claim's lease makes it due again
                log.exception(
                    "webhook %s: delivery %d failed inside the dispatcher", claim.webhook_id, claim.id
                )
                self._stop.wait(1.0)

    def deliver(self, claim: Claim, me: str) -> str:
        """One attempt of a claimed delivery, recorded; returns the delivery's new state."""
        try:
            secret = self.vault.unseal(claim.sealed_secret)
        except SecretUnreadable:
            unreadable = (
                "the webhook's signing secret cannot be decrypted (SECRET_KEY changed): register it again"
            )
            return self._settle(claim, me, None, unreadable, final=True)
        if claim.kind == "email":
            summary = summarize(json.loads(claim.body), self.settings.report_url)
            return self._settle(claim, me, *send_mail(self.settings, list(claim.to), summary))
        body = claim.body
        if claim.kind == "slack":
            summary = summarize(json.loads(claim.body), self.settings.report_url)
            body = json.dumps(slack_message(summary)).encode()
        try:
            addresses = self.policy.check_url(claim.url)
        except HostRefused as e:
            return self._settle(claim, me, None, f"refused by the host policy: {e}", final=True)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "mlops-nocode-webhook",
            "X-MLOPS-Event": claim.event,
            SIGNATURE_HEADER: sign(secret, body),
        }
        code: int | None
        error: str | None
        try:
            code = pinned_post(claim.url, addresses, body, headers, self.settings.webhook_timeout)
            error = None if code is not None and 200 <= code < 300 else f"HTTP {code}"
        except (OSError, ssl.SSLError, http.client.HTTPException, ValueError) as e:
            code, error = None, f"{type(e).__name__}: {e}"[:MAX_ERROR]
        return self._settle(claim, me, code, error)

    def _settle(self, claim: Claim, me: str, code: int | None, error: str | None, final: bool = False) -> str:
        state = self.queue.settle(claim, me, code, error, final)
        if state == "failed":
            log.warning(
                "webhook %s: gave up on %s of run %s after attempt %d: %s",
                claim.webhook_id,
                claim.event,
                claim.run_id,
                claim.attempt,
                error,
            )
        elif state == "lost":
            log.warning(
                "webhook %s: delivery %d was reclaimed (lease expired) meanwhile", claim.webhook_id, claim.id
            )
        return state
