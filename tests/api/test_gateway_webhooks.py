"""Webhooks through the live gateway, delivered to a real HTTP receiver on 127.0.0.1: retries with backoff
from the durable queue, and the host policy at registration and at delivery."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import NewDb, Server, sleeper, wait_status

SECRET = "whsec-0123456789abcdef"


class Receiver:
    """Records every POST; answers 500 to the first `fail_first` requests, then 200."""

    def __init__(self, fail_first: int = 0) -> None:
        self.received: list[tuple[dict[str, str], bytes, int]] = []
        self.fail_first = fail_first
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                code = 500 if len(owner.received) < owner.fail_first else 200
                owner.received.append(({k.lower(): v for k, v in self.headers.items()}, body, code))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def wait(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.received) >= count, self.received

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=2)
    yield r
    r.close()


@pytest.fixture(scope="module")
def hook_server(tmp_path_factory: pytest.TempPathFactory, new_db: NewDb) -> Iterator[Server]:
    home: Path = tmp_path_factory.mktemp("gw-hooks") / "home"
    s = Server(home, POLL_SECONDS="0.1", WEBHOOK_BACKOFF="0.2", WEBHOOK_ATTEMPTS="3", **new_db())
    s.start()
    yield s
    s.stop()


def _deliveries(c: httpx.Client, run_id: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        got: list[dict[str, Any]] = c.get(f"/api/v1/runs/{run_id}/deliveries").json()
        if len(got) >= count:
            return got
        time.sleep(0.05)
    raise AssertionError(f"deliveries of {run_id}: {got}")


def test_signed_delivery_retried_and_logged(hook_server: Server, receiver: Receiver) -> None:
    with hook_server.client(hook_server.admin_key) as c:
        created = c.post("/api/v1/webhooks", json={"url": receiver.url, "secret": SECRET})
        assert created.status_code == 201, created.text
        hook = created.json()
        assert hook["secret"] == SECRET and SECRET not in c.get("/api/v1/webhooks").text
        failing = c.post(
            "/api/v1/webhooks", json={"url": "http://127.0.0.1:9/nothing-listens", "events": ["run.failed"]}
        ).json()

        run_id = c.post("/api/v1/runs", json={"pipeline": sleeper("hooked", [("a", 0.01)])}).json()["id"]
        assert wait_status(c, run_id) == "succeeded"
        receiver.wait(3)  # the first two answers were 500: retried after the backoff
        (h1, b1, c1), (h2, b2, c2), (h3, b3, c3) = receiver.received[:3]
        assert (c1, c2, c3) == (500, 500, 200) and b1 == b2 == b3  # a retry resends the same delivery
        for headers, body in ((h1, b1), (h2, b2), (h3, b3)):
            expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            assert hmac.compare_digest(headers["x-mlops-signature"], expected)
            payload = json.loads(body)
            assert payload["event"] == "run.succeeded" == headers["x-mlops-event"]
            assert payload["run"]["id"] == run_id and payload["run"]["status"] == "succeeded"
        log = _deliveries(c, run_id, 3)
        assert [(d["attempt"], d["ok"], d["status_code"]) for d in log] == [
            (1, False, 500),
            (2, False, 500),
            (3, True, 200),
        ]
        assert all(d["webhook_id"] == hook["id"] for d in log)  # the run.failed hook was not called
        # each retry was scheduled WEBHOOK_BACKOFF (0.2 s), then twice that, after the logged attempt
        assert log[1]["ts"] - log[0]["ts"] >= 0.2 and log[2]["ts"] - log[1]["ts"] >= 0.4

        bad = c.post(
            "/api/v1/runs", json={"pipeline": sleeper("hooked-fail", [("x", 0.01)], fail="x")}
        ).json()["id"]
        assert wait_status(c, bad) == "failed"
        log = _deliveries(c, bad, 4)  # 1 to the receiver, 3 failing attempts to the dead port
        dead = [d for d in log if d["webhook_id"] == failing["id"]]
        assert [d["attempt"] for d in dead] == [1, 2, 3] and not any(d["ok"] for d in dead)
        assert all(d["status_code"] is None and d["error"] for d in dead)
        assert json.loads(receiver.received[-1][1])["event"] == "run.failed"

        assert c.delete(f"/api/v1/webhooks/{hook['id']}").status_code == 204
        assert c.delete(f"/api/v1/webhooks/{hook['id']}").status_code == 404


def test_webhook_validation(hook_server: Server) -> None:
    with hook_server.client(hook_server.admin_key) as c:
        assert c.post("/api/v1/webhooks", json={"url": "file:///etc/passwd"}).status_code == 422
        assert (
            c.post("/api/v1/webhooks", json={"url": "http://x", "events": ["run.exploded"]}).status_code
            == 422
        )
        assert c.post("/api/v1/webhooks", json={"url": "http://x", "secret": "short"}).status_code == 422
        assert c.get("/api/v1/runs/nope/deliveries").status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://[fe80::1]:8080/hook",
        "http://[::ffff:169.254.169.254]/",  # the same, IPv4-mapped
        "http://0.0.0.0:9/hook",
    ],
)
def test_registration_refuses_link_local_and_unspecified(hook_server: Server, url: str) -> None:
    with hook_server.client(hook_server.admin_key) as c:
        r = c.post("/api/v1/webhooks", json={"url": url})
        assert r.status_code == 422, r.text
        (problem,) = r.json()["detail"]
        assert problem["loc"] == ["body", "url"] and problem["type"] == "url_refused"
        assert "link-local" in problem["msg"] or "not a unicast host address" in problem["msg"]
        assert url not in c.get("/api/v1/webhooks").text


def test_registration_refusals_say_how_to_fix(hook_server: Server) -> None:
    with hook_server.client(hook_server.admin_key) as c:
        r = c.post("/api/v1/webhooks", json={"url": "http://no-such-host.invalid/hook"})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "url"]
        assert "cannot resolve host 'no-such-host.invalid'" in r.json()["detail"][0]["msg"]
        r = c.post("/api/v1/webhooks", json={"url": "ftp://127.0.0.1/hook"})
        assert r.status_code == 422 and "http:// or https://" in r.json()["detail"][0]["msg"]
        r = c.post("/api/v1/webhooks", json={"url": "http://bob:hunter2pass@127.0.0.1:9/hook"})
        assert r.status_code == 422 and "user name or password" in r.json()["detail"][0]["msg"]
        assert "hunter2pass" not in r.text and "hunter2pass" not in c.get("/api/v1/webhooks").text


def test_allowed_hosts_enforced_at_registration_and_delivery(
    tmp_path: Path, new_db: NewDb, receiver: Receiver
) -> None:
    """Registered while allowed; the gateway restarts with a narrower WEBHOOK_ALLOWED_HOSTS: the delivery
    is refused after resolution (as a DNS answer changed since registration would be), logged, not sent."""
    server = Server(tmp_path / "home", POLL_SECONDS="0.1", WEBHOOK_BACKOFF="0.2", **new_db())
    server.start()
    try:
        with server.client(server.admin_key) as c:
            assert c.post("/api/v1/webhooks", json={"url": receiver.url}).status_code == 201
        server.stop()
        server.env["WEBHOOK_ALLOWED_HOSTS"] = "hooks.example.org, 10.0.0.0/8"
        server.start()
        with server.client(server.admin_key) as c:
            r = c.post("/api/v1/webhooks", json={"url": receiver.url})
            assert r.status_code == 422, r.text
            assert r.json()["detail"][0]["loc"] == ["body", "url"]
            assert "not in WEBHOOK_ALLOWED_HOSTS" in r.json()["detail"][0]["msg"]
            run_id = c.post("/api/v1/runs", json={"pipeline": sleeper("refused", [("a", 0.01)])}).json()["id"]
            assert wait_status(c, run_id) == "succeeded"
            (attempt,) = _deliveries(c, run_id, 1)
            assert attempt["ok"] is False and attempt["status_code"] is None
            assert attempt["error"].startswith("refused by the host policy: 127.0.0.1 is not in")
        assert receiver.received == []
    finally:
        server.stop()
