"""Notification targets through the live gateway: a deploy's `notify` list and a pipeline's `spec.notify`
delivered by the durable webhook queue to a real HTTP receiver (signed webhook, n8n, Slack-compatible) and
to a real SMTP server (aiosmtpd, STARTTLS and login) on 127.0.0.1; registered slack and email webhooks
for alerts; located refusals at launch; secrets never shown twice."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import NewDb, Server, sleeper, wait_status
from tests.api.test_gateway_webhooks import Receiver
from tests.smtp_support import PASSWORD, SmtpServer

N8N_SECRET = "n8n-own-secret-0123456789"


@pytest.fixture(scope="module")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    s = SmtpServer(tmp_path_factory.mktemp("smtp"))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, new_db: NewDb, smtp: SmtpServer) -> Iterator[Server]:
    home: Path = tmp_path_factory.mktemp("gw-notify") / "home"
    s = Server(home, POLL_SECONDS="0.1", WEBHOOK_BACKOFF="0.2", WEBHOOK_ATTEMPTS="3", **smtp.env, **new_db())
    s.start()
    yield s
    s.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _deliveries(c: httpx.Client, run_id: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    got: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        got = c.get(f"/api/v1/runs/{run_id}/deliveries").json()
        if len(got) >= count:
            return got
        time.sleep(0.05)
    raise AssertionError(f"deliveries of {run_id}: {got}")


def _signed_by(secret: str, headers: dict[str, str], body: bytes) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["x-mlops-signature"], expected)


def test_a_deploys_targets_each_hear_of_its_end_once(gw: Server, smtp: SmtpServer) -> None:
    plain, n8n, slack, failures = Receiver(), Receiver(), Receiver(), Receiver()
    before = len(smtp.inbox.messages)
    notify = [
        {"type": "webhook", "url": plain.url},
        {"type": "n8n", "url": n8n.url, "secret": N8N_SECRET},
        {"type": "slack", "url": slack.url},
        {"type": "email", "to": ["ml-team@example.org", "oncall@example.org"]},
        {"type": "webhook", "url": failures.url, "events": ["run.failed"]},
    ]
    try:
        with gw.client(gw.admin_key) as c:
            r = c.post(
                "/pipelines/deploy", json={"pipeline": sleeper("told", [("a", 0.01)]), "notify": notify}
            )
            assert r.status_code == 202, r.text
            run_id, secret = r.json()["pipeline_id"], r.json()["notify_secret"]
            assert len(secret) >= 32
            assert wait_status(c, run_id) == "succeeded"
            log = _deliveries(c, run_id, 4)
            assert len(log) == 4 and all(d["ok"] for d in log), log  # not the failures-only target
            assert c.get("/api/v1/webhooks").json() == []  # a run's targets are not registered webhooks
            seen = c.get(f"/api/v1/runs/{run_id}").text + c.get("/api/v1/webhooks").text + gw.log.read_text()
            assert secret not in seen and N8N_SECRET not in seen and PASSWORD not in seen
        for r in (plain, n8n, slack):
            r.wait(1)
        assert len(plain.received) == len(n8n.received) == len(slack.received) == 1 and not failures.received
        headers, body, _ = plain.received[0]
        assert _signed_by(secret, headers, body)
        payload = json.loads(body)
        assert payload["event"] == "run.succeeded" and payload["run"]["id"] == run_id
        headers, body, _ = n8n.received[0]
        assert _signed_by(N8N_SECRET, headers, body) and json.loads(body)["run"]["id"] == run_id
        message = json.loads(slack.received[0][1])
        assert "pipeline/told" in message["text"] and f"/runs/{run_id}" in message["text"]
        assert ":white_check_mark:" in message["blocks"][0]["text"]["text"]
    finally:
        for r in (plain, n8n, slack, failures):
            r.close()

    ((envelope, mail),) = smtp.inbox.wait(before + 1)[before:]
    assert envelope.rcpt_tos == ["ml-team@example.org", "oncall@example.org"]
    assert envelope.mail_from == "mlops@example.org" and smtp.inbox.logins
    assert mail["Subject"] == "[mlops] pipeline/told@1.0.0 succeeded"
    text = mail.get_content()
    assert "pipeline/told@1.0.0" in text and "succeeded" in text and "duration" in text
    assert f"{gw.url}/runs/{run_id}" in text


def test_a_pipelines_defaults_apply_unless_the_deploy_replaces_them(
    gw: Server, smtp: SmtpServer, receiver: Receiver
) -> None:
    docs = sleeper("defaults", [("x", 0.01)], fail="x")
    docs[-1]["spec"]["notify"] = [
        {"type": "slack", "url": receiver.url, "events": ["run.failed"]},
        {"type": "email", "to": ["owner@example.org"], "events": ["run.failed"]},
    ]
    before = len(smtp.inbox.messages)
    with gw.client(gw.admin_key) as c:
        r = c.post("/api/v1/runs", json={"pipeline": docs})
        assert r.status_code == 202, r.text
        assert r.json()["notify_secret"] is None  # no signed target uses it
        run_id = r.json()["id"]
        assert wait_status(c, run_id) == "failed"
        assert len(_deliveries(c, run_id, 2)) == 2
        receiver.wait(1)
        slack = json.loads(receiver.received[0][1])
        assert ":x:" in slack["blocks"][0]["text"]["text"] and "code 3" in json.dumps(slack["blocks"])
        ((_, mail),) = smtp.inbox.wait(before + 1)[before:]
        assert "failed" in mail["Subject"] and "code 3" in mail.get_content()

        silenced = c.post("/api/v1/runs", json={"pipeline": docs, "notify": []}).json()["id"]
        assert wait_status(c, silenced) == "failed"
        assert c.get(f"/api/v1/runs/{silenced}/deliveries").json() == []
        assert len(receiver.received) == 1

        for source, expected in ((run_id, 2), (silenced, 0)):  # a retry keeps its run's targets
            retried = c.post(f"/api/v1/runs/{source}/retry").json()["id"]
            assert wait_status(c, retried) == "failed"
            if expected:
                assert len(_deliveries(c, retried, expected)) == expected
            else:
                assert c.get(f"/api/v1/runs/{retried}/deliveries").json() == []
        receiver.wait(2)
    assert len(receiver.received) == 2


@pytest.mark.parametrize(
    ("target", "where", "words"),
    [
        ({"type": "webhook", "url": "http://169.254.169.254/latest/"}, "notify[0].url", "link-local"),
        ({"type": "slack", "url": "http://no-such-host.invalid/x"}, "notify[0].url", "cannot resolve"),
    ],
)
def test_a_refused_target_is_a_located_problem_and_queues_nothing(
    gw: Server, target: dict[str, Any], where: str, words: str
) -> None:
    with gw.client(gw.admin_key) as c:
        total = c.get("/api/v1/runs").json()["total"]
        r = c.post(
            "/pipelines/deploy", json={"pipeline": sleeper("refused", [("a", 0.01)]), "notify": [target]}
        )
        assert r.status_code == 422, r.text
        (problem,) = r.json()["problems"]
        assert problem["where"] == where and words in problem["what"] and problem["fix"]
        assert c.get("/api/v1/runs").json()["total"] == total


@pytest.mark.parametrize(
    "target",
    [
        {"type": "email", "to": ["ops@example.org\r\nBcc: victim@example.org"]},
        {"type": "email", "to": ["Ops <ops@example.org>"]},
        {"type": "email", "url": "http://127.0.0.1/x", "to": ["ops@example.org"]},
        {"type": "slack", "url": "http://127.0.0.1/x\r\nX-Injected: 1"},
        {"type": "slack", "url": "http://127.0.0.1/x", "secret": "0123456789abcdef0123"},
        {"type": "webhook"},
        {"type": "webhook", "url": "javascript:alert(1)"},
        {"type": "sms", "url": "http://127.0.0.1/x"},
    ],
)
def test_malformed_targets_are_refused_where_they_are(gw: Server, target: dict[str, Any]) -> None:
    with gw.client(gw.admin_key) as c:
        r = c.post(
            "/api/v1/runs", json={"pipeline": sleeper("bad-target", [("a", 0.01)]), "notify": [target]}
        )
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"][:3] == ["body", "notify", 0], r.json()


def test_a_bad_spec_notify_is_found_by_validate(gw: Server) -> None:
    docs = sleeper("bad-spec", [("a", 0.01)])
    docs[-1]["spec"]["notify"] = [{"type": "email", "to": ["nobody\nBcc: x@example.org"]}]
    with gw.client(gw.admin_key) as c:
        r = c.post("/api/v1/validate", json={"pipeline": docs})
        assert r.status_code == 422, r.text
        (problem,) = r.json()["problems"]
        assert problem["where"].endswith("spec.notify[0].to") and "not an e-mail address" in problem["what"]


def test_registered_slack_and_email_webhooks_get_alerts(
    gw: Server, smtp: SmtpServer, receiver: Receiver
) -> None:
    alert = {
        "status": "firing",
        "labels": {"alertname": "MlopsRunFailures", "severity": "page"},
        "annotations": {"summary": "runs fail", "description": "3 runs failed in 10 minutes"},
        "startsAt": "2026-11-30T12:00:00Z",
        "fingerprint": "c0ffee01",
    }
    before = len(smtp.inbox.messages)
    with gw.client(gw.admin_key) as c:
        slack = c.post(
            "/api/v1/webhooks", json={"type": "slack", "url": receiver.url, "events": ["alert.firing"]}
        )
        mail = c.post(
            "/api/v1/webhooks",
            json={"type": "email", "to": ["oncall@example.org"], "events": ["alert.firing"]},
        )
        assert slack.status_code == mail.status_code == 201, (slack.text, mail.text)
        listed = {h["id"]: h for h in c.get("/api/v1/webhooks").json()}
        assert listed[mail.json()["id"]]["to"] == ["oncall@example.org"]
        assert listed[slack.json()["id"]]["type"] == "slack"
        r = c.post("/api/v1/alerts", json={"version": "4", "status": "firing", "alerts": [alert]})
        assert r.status_code == 200 and r.json()["queued"] == 2, r.text
        receiver.wait(1)
        assert "MlopsRunFailures" in json.loads(receiver.received[0][1])["text"]
        ((_, message),) = smtp.inbox.wait(before + 1)[before:]
        assert message["Subject"] == "[mlops] alert MlopsRunFailures firing"
        assert "3 runs failed in 10 minutes" in message.get_content()
        for hook in (slack.json(), mail.json()):
            assert c.delete(f"/api/v1/webhooks/{hook['id']}").status_code == 204


def test_email_webhooks_need_smtp_and_valid_recipients(gw: Server) -> None:
    with gw.client(gw.admin_key) as c:
        r = c.post("/api/v1/webhooks", json={"type": "email", "to": ["a@example.org\r\nBcc: b@example.org"]})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][:2] == ["body", "to"], r.text
        assert c.post("/api/v1/webhooks", json={"type": "email"}).status_code == 422
        assert c.post("/api/v1/webhooks", json={"type": "slack"}).status_code == 422


def test_a_run_cancelled_while_queued_is_notified(tmp_path: Path) -> None:
    """No worker ever claims it: the cancel itself records the end, and must queue `run.cancelled`."""
    hook = Receiver()
    server = Server(tmp_path / "home", WORKERS="0", POLL_SECONDS="0.1")
    server.start()
    try:
        with server.client(server.admin_key) as c:
            notify = [{"type": "webhook", "url": hook.url, "events": ["run.cancelled"]}]
            r = c.post("/api/v1/runs", json={"pipeline": sleeper("queued", [("a", 0.01)]), "notify": notify})
            assert r.status_code == 202, r.text
            run_id = r.json()["id"]
            assert c.post(f"/api/v1/runs/{run_id}/cancel").json()["status"] == "cancelled"
            hook.wait(1)
            payload = json.loads(hook.received[0][1])
            assert payload["event"] == "run.cancelled" and payload["run"]["id"] == run_id
            assert [d["ok"] for d in _deliveries(c, run_id, 1)] == [True]
    finally:
        server.stop()
        hook.close()
