"""The Runner's side of reporting to the gateway over HTTP, with a per-run token (see runs.runtoken).

A `GatewayReporter` is a Runner event sink. It buffers events and, on its own thread, POSTs them in
batches every tick to `/api/v1/runs/{id}/report` (each POST is also the run's heartbeat). Events are
numbered on this side, so a batch sent again after a lost answer is stored once. The answer says whether
a cancel was asked (the Runner is then cancelled) and, near the token's expiry, carries a fresh token.
A 409 means the run was handed to another worker: this one stops its Runner and records nothing more.
No event can hold the reports up: one larger than MAX_EVENT_BYTES is replaced by a note saying so; when
the gateway refuses a batch as too large (413: its MAX_BODY_BYTES is smaller), batches get smaller, and
an event refused on its own is replaced by such a note (dropped if even the note is refused).
The end goes to `/finish` (or `/release`, giving the run back to the queue), retried until it lands or
the run would be recovered anyway.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from mlops_nocode.runtime.events import Event

log = logging.getLogger("mlops_nocode.reporter")
MAX_BATCH_BYTES = 512 * 1024  # under the gateway's default 1 MiB body limit
MAX_EVENT_BYTES = 384 * 1024
RETRYABLE = frozenset({429, 500, 502, 503, 504})


class ReportRefused(RuntimeError):
    """The gateway refused the report for good (bad token, unknown run): the message says why."""


class BodyTooLarge(ReportRefused):
    """The gateway refused a body as larger than its MAX_BODY_BYTES (413)."""


def _encode(event: Event) -> bytes:
    fields = {"type": event.type, "step": event.step, "ts": event.ts}
    raw = json.dumps({**fields, "data": event.data}, default=str).encode()
    if len(raw) <= MAX_EVENT_BYTES:
        return raw
    return _note(fields, event.data, len(raw), f"larger than {MAX_EVENT_BYTES} bytes")


def _note(fields: dict[str, Any], data: dict[str, Any], size: int, why: str) -> bytes:
    """An event standing for one of `size` bytes that is not sent (a `log` event keeps a line)."""
    note: dict[str, Any] = {"truncated": True, "bytes": size, "why": why}
    if fields["type"] == "log":
        note["line"] = f"… [a log event of {size} bytes was not sent: {why}]"
        if "attempt" in data:
            note["attempt"] = data["attempt"]
    return json.dumps({**fields, "data": note}, default=str).encode()


def _shrunk(raw: bytes) -> bytes | None:
    """A note standing for the encoded event `raw`, which the gateway refused as too large (None when
    `raw` is such a note already)."""
    event = json.loads(raw)
    data = event.get("data") or {}
    if data.get("truncated"):
        return None
    fields = {k: event.get(k) for k in ("type", "step", "ts")}
    return _note(fields, data, len(raw), "the gateway refused it as too large (MAX_BODY_BYTES)")


class GatewayReporter:
    """Event sink reporting one run to the gateway; `start()`, then `close()` and `finish()`/`release()`."""

    def __init__(
        self,
        base_url: str,
        run_id: str,
        token: str,
        on_cancel: Callable[[], None],
        tick: float = 0.5,
        timeout: float = 10.0,
        append: bool = False,
    ) -> None:
        """`append`: events go after those stored, whoever stored them (a run whose deployments each
        have a Runner reporting; a batch resent after a lost answer may then be stored twice)."""
        self.append = append
        self.run_id, self.token, self.on_cancel, self.tick = run_id, token, on_cancel, tick
        self.client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)
        self.lost = False
        self.unreachable = False  # the last POST did not reach the gateway (or it answered 5xx)
        self.cancel_requested = False
        self.seq: int | None = None  # the seq of the next event to send; the gateway tells it
        self.max_batch = MAX_BATCH_BYTES  # smaller once the gateway refused a batch as too large
        self._buf: list[bytes] = []
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"report-{run_id}", daemon=True)

    # -- the Runner's sink ---------------------------------------------------------------------------
    def __call__(self, event: Event) -> None:
        raw = _encode(event)
        with self._lock:
            self._buf.append(raw)

    def start(self) -> None:
        """First report (learns the next seq: events of an earlier attempt are kept), then the ticks."""
        self.flush()
        self._thread.start()

    def flush(self) -> bool:
        """Send what is buffered (in batches under the body limit); False when the gateway could not be
        reached (the events stay buffered for the next tick)."""
        with self._send_lock:
            if self.lost:
                return False
            with self._lock:
                pending = list(self._buf)
            sent = 0
            while True:
                batch: list[bytes] = []
                size = 2
                for raw in pending[sent:]:
                    if batch and size + len(raw) + 1 > self.max_batch:
                        break
                    batch.append(raw)
                    size += len(raw) + 1
                try:
                    if not self._post_batch(batch):
                        break
                except BodyTooLarge:
                    if not batch:
                        raise
                    if len(batch) > 1:
                        self.max_batch = size // 2
                    else:
                        self._shrink(pending, sent)
                    continue
                sent += len(batch)
                if sent >= len(pending):
                    break
            with self._lock:
                del self._buf[:sent]
            return sent == len(pending)

    def _shrink(self, pending: list[bytes], i: int) -> None:
        """Event `i` was refused on its own: a note stands for it, or it is dropped if it was one."""
        smaller = _shrunk(pending[i])
        log.warning(
            "the gateway refused an event of %d bytes of run %s as too large", len(pending[i]), self.run_id
        )
        with self._lock:  # the buffer only grows at its end meanwhile: index i is still this event
            if smaller is None:
                del pending[i], self._buf[i]
            else:
                pending[i] = self._buf[i] = smaller

    def _post_batch(self, batch: list[bytes]) -> bool:
        if self.seq is None and batch and not self._post_batch([]):  # learn the seq before numbering
            return False
        first = "null" if self.seq is None or self.append else str(self.seq)
        body = b'{"first_seq":' + first.encode() + b',"events":[' + b",".join(batch) + b"]}"
        answer = self._post("report", body)
        if answer is None:
            return False
        self.seq = int(answer["next_seq"])
        if answer.get("token"):
            self.token = str(answer["token"])
        if answer.get("cancel_requested") and not self.cancel_requested:
            self.cancel_requested = True
            self.on_cancel()
        return True

    def _post(self, action: str, body: bytes) -> dict[str, Any] | None:
        """One POST; the JSON answer, or None when it did not land (network, 5xx, or 409: lost)."""
        try:
            r = self.client.post(
                f"/api/v1/runs/{self.run_id}/{action}",
                content=body,
                headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
            )
        except httpx.HTTPError as e:
            log.warning("cannot reach the gateway to %s run %s: %s", action, self.run_id, e)
            self.unreachable = True
            return None
        if r.status_code == 409:
            if not self.lost:
                self.lost = True
                log.warning("run %s was taken over elsewhere; stopping it here", self.run_id)
                self.on_cancel()
            return None
        if r.status_code == 413:
            raise BodyTooLarge(
                f"gateway refused the {action} of run {self.run_id} as too large: {r.text[:2000]}"
            )
        if r.status_code in RETRYABLE:
            log.warning("gateway answered %d to %s of run %s", r.status_code, action, self.run_id)
            self.unreachable = True
            return None
        self.unreachable = False
        if r.status_code >= 400:
            why = f"gateway refused the {action} of run {self.run_id}: {r.status_code} {r.text[:2000]}"
            raise ReportRefused(why)
        data: dict[str, Any] = r.json()
        return data

    def _loop(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                self.flush()
            except ReportRefused as e:
                log.error("%s", e)
                self.lost = True
                self.on_cancel()
                return

    def close(self) -> None:
        """Stop ticking and send the rest."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def unsent(self) -> list[dict[str, Any]]:
        """The events not delivered yet (for a worker recording them another way)."""
        with self._lock:
            return [json.loads(raw) for raw in self._buf]

    # -- the end -------------------------------------------------------------------------------------
    def finish(self, end: dict[str, Any], patience: float = 30.0) -> bool:
        """Send the remaining events and record the end; True when the gateway recorded it."""
        return self._end("finish", json.dumps(end, default=str).encode(), patience)

    def release(self, patience: float = 10.0) -> bool:
        """Give the run back to the queue (this worker is stopping)."""
        return self._end("release", b"{}", patience)

    def _end(self, action: str, body: bytes, patience: float) -> bool:
        deadline, pause = time.monotonic() + patience, 0.2
        try:
            while not self.lost:
                if self.flush():
                    answer = self._post(action, body)
                    if answer is not None:
                        return bool(answer.get("recorded", True))
                if self.lost or time.monotonic() + pause > deadline:
                    break
                time.sleep(pause)
                pause = min(pause * 2, 2.0)
        except ReportRefused as e:
            log.error("%s", e)
        finally:
            self.client.close()
        if not self.lost:
            log.error("could not %s run %s at the gateway; it will be recovered", action, self.run_id)
        return False
