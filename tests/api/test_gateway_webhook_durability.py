"""Durable webhook deliveries: kill -9 the gateway while deliveries are pending and in flight; after a
restart each is delivered exactly once (on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.api.conftest import NewDb, Server, free_port, sleeper


class Receiver:
    """Records every POST and answers 200, except that `on_first` runs instead of answering the first."""

    def __init__(self, port: int = 0, on_first: Callable[[], None] | None = None) -> None:
        self.bodies: list[bytes] = []
        self.first_seen = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                owner.bodies.append(body)
                if len(owner.bodies) == 1 and on_first is not None:
                    on_first()  # the sender is gone: nobody to answer
                    owner.first_seen.set()
                    return
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _wait(what: str, done: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.05)


def _log(c: httpx.Client, run_id: str, hook_id: str) -> list[dict[str, Any]]:
    got = c.get(f"/api/v1/runs/{run_id}/deliveries")
    assert got.status_code == 200, got.text
    return [d for d in got.json() if d["webhook_id"] == hook_id]


def test_deliveries_survive_kill9(tmp_path: Path, new_db: NewDb) -> None:
    server = Server(
        tmp_path / "home",
        POLL_SECONDS="0.1",
        WEBHOOK_BACKOFF="0.3",
        WEBHOOK_ATTEMPTS="10",
        WEBHOOK_TIMEOUT="2",
        WEBHOOK_LEASE="3",
        **new_db(),
    )
    down_port = free_port()  # nothing listens there until the gateway is dead
    down_url = f"http://127.0.0.1:{down_port}/hook"
    # the in-flight receiver kills the gateway when the first delivery reaches it, before any answer
    inflight = Receiver(on_first=server.kill9)
    down: Receiver | None = None
    server.start()
    try:
        with server.client(server.admin_key) as c:
            hook_down = c.post("/api/v1/webhooks", json={"url": down_url}).json()["id"]
            hook_inflight = c.post("/api/v1/webhooks", json={"url": inflight.url}).json()["id"]
            run = c.post("/api/v1/runs", json={"pipeline": sleeper("durable", [("a", 0.01)])})
            assert run.status_code == 202, run.text
            run_id = run.json()["id"]
        assert inflight.first_seen.wait(60), "the delivery never reached the receiver"
        assert server.proc is not None and server.proc.returncode is not None  # killed with -9

        down = Receiver(port=down_port)
        server.start()
        with server.client(server.admin_key) as c:
            _wait("both deliveries", lambda: len(down.bodies) == 1 and len(inflight.bodies) == 2)
            _wait(
                "the delivery log",
                lambda: (
                    any(d["ok"] for d in _log(c, run_id, hook_down))
                    and any(d["ok"] for d in _log(c, run_id, hook_inflight))
                ),
            )
            pending = _log(c, run_id, hook_down)
            inflight_log = _log(c, run_id, hook_inflight)
        # queued while its receiver was down: failed attempts (before the kill, and maybe after the
        # restart until the receiver was up), then one success, exactly once, with numbering kept
        assert [d["attempt"] for d in pending] == list(range(1, len(pending) + 1))
        assert [d["ok"] for d in pending] == [False] * (len(pending) - 1) + [True]
        # (refused connections, or an attempt the kill interrupted, counted when its lease expired)
        assert all(d["status_code"] is None for d in pending[:-1])
        assert all("ConnectionRefused" in d["error"] or "lease expired" in d["error"] for d in pending[:-1])
        assert len(down.bodies) == 1
        payload = json.loads(down.bodies[0])
        assert payload["event"] == "run.succeeded" and payload["run"]["id"] == run_id
        # in flight when the process died: the lost attempt is logged when its lease expired, then
        # the same delivery (same body, same id) is sent again and succeeds
        assert [(d["attempt"], d["ok"]) for d in inflight_log] == [(1, False), (2, True)]
        assert "lease expired" in inflight_log[0]["error"]
        assert inflight.bodies[0] == inflight.bodies[1]
    finally:
        server.stop()
        inflight.close()
        if down is not None:
            down.close()
