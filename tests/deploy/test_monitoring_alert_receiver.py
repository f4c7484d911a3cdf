"""Alertmanager -> gateway -> webhooks, for real: Debian's `prometheus-alertmanager` runs the SHIPPED
alertmanager.yml (only the gateway's URL, the credential file and the grouping delays changed for a
test), an alert is fired at its API, and the live gateway delivers `alert.firing` then `alert.resolved`
to a subscribed webhook receiver on loopback. The receiver endpoint's own edges: exactly once per
alert however often it is sent, bounded and validated input, the write scope, URLs never called."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import yaml

from tests.api.conftest import Server, free_port, wait_status
from tests.deploy.monitoring_support import ALERTMANAGER_YML, MONITORING, RULES, binary
from tests.deploy.test_monitoring_rules import _rules, metric_names
from tests.metric_pipeline import metric_pipeline

SECRET = "whsec-alerts-0123456789"


class Receiver:
    """Records every POST (headers, body) and answers 200."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                owner.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                owner.received.append(({k.lower(): v for k, v in self.headers.items()}, b"GET"))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received if body != b"GET"]

    def wait_for(self, event: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for headers, body in list(self.received):
                if headers.get("x-mlops-event") == event:
                    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                    assert hmac.compare_digest(headers["x-mlops-signature"], expected)
                    payload: dict[str, Any] = json.loads(body)
                    return payload
            time.sleep(0.05)
        raise AssertionError(f"no {event} within {timeout}s: {self.received}")

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home: Path = tmp_path_factory.mktemp("gw-alerts") / "home"
    server = Server(
        home,
        POLL_SECONDS="0.1",
        WEBHOOK_BACKOFF="0.2",
        WORKERS="1",
        MONITORING_METRIC_MIN='{"accuracy": 0.95}',
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def receiver(gateway: Server) -> Iterator[Receiver]:
    r = Receiver()
    with gateway.client(gateway.admin_key) as c:
        hook = c.post(
            "/api/v1/webhooks",
            json={"url": r.url, "secret": SECRET, "events": ["alert.firing", "alert.resolved"]},
        )
        assert hook.status_code == 201, hook.text
    yield r
    r.close()


def _key(server: Server, scopes: list[str]) -> str:
    with server.client(server.admin_key) as c:
        made = c.post("/api/v1/keys", json={"name": f"alerts-{'-'.join(scopes)}", "scopes": scopes})
        assert made.status_code == 201, made.text
        return str(made.json()["key"])


def _now(delta: float = 0.0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=delta)).isoformat().replace("+00:00", "Z")


def _payload(alerts: list[dict[str, Any]], status: str = "firing") -> dict[str, Any]:
    return {"version": "4", "status": status, "receiver": "mlops-gateway", "groupKey": "{}", "alerts": alerts}


def _alert(fingerprint: str, status: str = "firing", **extra: Any) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "MlopsRunStuck", "severity": "warning"},
        "annotations": {"summary": "stuck"},
        "startsAt": "2026-01-01T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": fingerprint,
    } | extra


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, log.read_text()
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def alertmanager(tmp_path: Path, gateway: Server, key: str, pids: list[int]) -> Iterator[str]:
    """The shipped configuration, run by the real binary on loopback; yields its URL (its pid in `pids`)."""
    tmp_path.mkdir(exist_ok=True)
    config = yaml.safe_load(ALERTMANAGER_YML.read_text())
    token = tmp_path / "gateway-token"
    token.write_text(key)
    token.chmod(0o600)
    (hook,) = config["receivers"][0]["webhook_configs"]
    hook["url"] = f"{gateway.url}/api/v1/alerts"
    hook["http_config"]["authorization"]["credentials_file"] = str(token)
    config["route"] |= {"group_wait": "1s", "group_interval": "1s"}  # a test cannot wait 30 s and 5 min
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = (tmp_path / "alertmanager.log").open("wb")
    proc = subprocess.Popen(
        [
            binary("prometheus-alertmanager"),
            f"--config.file={tmp_path / 'alertmanager.yml'}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    pids.append(proc.pid)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, url, tmp_path / "alertmanager.log")
        yield url
    finally:
        _stop(proc)
        log.close()
        token.unlink()


def test_alertmanager_fires_at_the_gateway_which_notifies_the_webhooks(
    tmp_path: Path, gateway: Server, receiver: Receiver
) -> None:
    key = _key(gateway, ["write"])
    labels = {"alertname": "MlopsModelMetricBelowMinimum", "severity": "warning", "pipeline": "iris"}
    labels |= {"metric": "accuracy", "step": "train"}
    annotations = {"summary": "accuracy of iris is below its minimum"}
    pids: list[int] = []
    with alertmanager(tmp_path, gateway, key, pids) as am:
        fired = httpx.post(
            f"{am}/api/v2/alerts", json=[{"labels": labels, "annotations": annotations, "startsAt": _now()}]
        )
        assert fired.status_code == 200, fired.text
        firing = receiver.wait_for("alert.firing")
        assert firing["event"] == "alert.firing"
        alert = firing["alert"]
        assert alert["labels"] == labels and alert["annotations"] == annotations
        assert alert["status"] == "firing" and alert["ends_at"] is None
        assert alert["id"].startswith("alert-") and len(alert["id"]) <= 64
        assert "generatorURL" not in json.dumps(firing)  # the sender's URLs are not passed on

        resolved = httpx.post(
            f"{am}/api/v2/alerts",
            json=[
                {
                    "labels": labels,
                    "annotations": annotations,
                    "startsAt": alert["starts_at"],
                    "endsAt": _now(),
                }
            ],
        )
        assert resolved.status_code == 200, resolved.text
        done = receiver.wait_for("alert.resolved")
        assert done["alert"]["id"] == alert["id"] and done["alert"]["ends_at"] is not None

    assert not psutil.pid_exists(pids[0]) and not (tmp_path / "gateway-token").exists()
    with gateway.client(key) as c:
        deadline = time.monotonic() + 20
        while len(log := c.get(f"/api/v1/alerts/{alert['id']}/deliveries").json()) < 2:
            assert time.monotonic() < deadline, log
            time.sleep(0.05)
        assert sorted(d["event"] for d in log) == ["alert.firing", "alert.resolved"] and all(
            d["ok"] for d in log
        )
        metrics = c.get("/metrics").text
    counted = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in metrics.splitlines()
        if line.startswith("mlops_alerts_received_total")
    }
    assert counted['mlops_alerts_received_total{status="firing"}'] >= 1
    assert counted['mlops_alerts_received_total{status="resolved"}'] >= 1


def test_each_alert_is_notified_once_however_often_it_is_sent(gateway: Server, receiver: Receiver) -> None:
    with gateway.client(_key(gateway, ["write"])) as c:
        first = c.post("/api/v1/alerts", json=_payload([_alert("00aa11bb22cc33dd")]))
        assert first.status_code == 200, first.text
        assert first.json()["queued"] == 1 and first.json()["received"] == 1
        again = c.post("/api/v1/alerts", json=_payload([_alert("00aa11bb22cc33dd")]))
        assert again.json()["queued"] == 0  # Alertmanager re-sends at repeat_interval: nothing new
        assert again.json()["alerts"][0]["id"] == first.json()["alerts"][0]["id"]
        same_instant = _alert("00aa11bb22cc33dd", startsAt="2026-01-01T12:00:00+02:00")
        assert c.post("/api/v1/alerts", json=_payload([same_instant])).json()["queued"] == 0
        later = c.post(
            "/api/v1/alerts", json=_payload([_alert("00aa11bb22cc33dd", startsAt="2026-01-02T10:00:00Z")])
        )
        assert later.json()["queued"] == 1  # the same alert firing again later is news
        ended = c.post(
            "/api/v1/alerts", json=_payload([_alert("00aa11bb22cc33dd", status="resolved")], "resolved")
        )
        assert ended.json()["queued"] == 1
        alert_id = first.json()["alerts"][0]["id"]
        deadline = time.monotonic() + 20
        while len(c.get(f"/api/v1/alerts/{alert_id}/deliveries").json()) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    mine = [e for e in receiver.events() if e["alert"]["fingerprint"] == "00aa11bb22cc33dd"]
    assert sorted((e["event"], e["alert"]["starts_at"][:10]) for e in mine) == [
        ("alert.firing", "2026-01-01"),
        ("alert.firing", "2026-01-02"),
        ("alert.resolved", "2026-01-01"),
    ]


def test_bad_alerts_are_located_errors_and_change_nothing(gateway: Server, receiver: Receiver) -> None:
    trap = Receiver()  # an alert naming a URL must never make the gateway call it
    before = len(receiver.received)
    with gateway.client(gateway.admin_key) as c:
        assert c.put("/api/v1/secrets/PAGER_TOKEN", json={"value": "pgr-s3cr3t-value-42"}).status_code in (
            200,
            201,
        )
    with gateway.client(_key(gateway, ["write"])) as c:
        cases: list[tuple[dict[str, Any], list[Any]]] = [
            ({**_payload([_alert("01")]), "version": "3"}, ["body", "version"]),
            (_payload([_alert("not-hex")]), ["body", "alerts", 0, "fingerprint"]),
            (_payload([_alert("02", status="pending")]), ["body", "alerts", 0, "status"]),
            (
                _payload([_alert("03", labels={f"l{i}": "v" for i in range(65)})]),
                ["body", "alerts", 0, "labels"],
            ),
            (
                _payload([_alert("04", annotations={"summary": "x" * 5000})]),
                ["body", "alerts", 0, "annotations"],
            ),
            (_payload([_alert("05", startsAt="yesterday")]), ["body", "alerts", 0, "startsAt"]),
            (_payload([]), ["body", "alerts"]),
        ]
        for body, where in cases:
            answer = c.post("/api/v1/alerts", json=body)
            assert answer.status_code == 422, (where, answer.text)
            assert any(p["loc"][: len(where)] == where for p in answer.json()["detail"]), (where, answer.text)
        huge = c.post("/api/v1/alerts", json=_payload([_alert(f"{i:x}") for i in range(1001)]))
        assert huge.status_code in (413, 422), huge.text
        hostile = _alert(
            "0123456789abcdef",
            generatorURL=trap.url,
            labels={"alertname": "x'; rm -rf / #", "url": trap.url},
            annotations={
                "runbook_url": trap.url,
                "description": '"}\n{"injected": true',
                "leak": "token=pgr-s3cr3t-value-42",
            },
        )
        took = c.post("/api/v1/alerts", json={**_payload([hostile]), "externalURL": trap.url, "extra": 1})
        assert took.status_code == 200, took.text
    with gateway.client(_key(gateway, ["read"])) as c:
        denied = c.post("/api/v1/alerts", json=_payload([_alert("0f")]))
        assert denied.status_code == 403
    with httpx.Client(base_url=gateway.url) as anonymous:
        assert anonymous.post("/api/v1/alerts", json=_payload([_alert("0e")])).status_code == 401
    deadline = time.monotonic() + 20
    while not any(e["alert"]["fingerprint"] == "0123456789abcdef" for e in receiver.events()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    delivered = [e for e in receiver.events()[before:] if e["alert"]["fingerprint"] != "0123456789abcdef"]
    assert delivered == []  # the refused ones queued nothing
    note = next(e for e in receiver.events() if e["alert"]["fingerprint"] == "0123456789abcdef")
    assert note["alert"]["labels"]["alertname"] == "x'; rm -rf / #"  # data, passed on as JSON
    assert note["alert"]["annotations"]["description"] == '"}\n{"injected": true'
    assert (
        "pgr-s3cr3t-value-42" not in json.dumps(note) and note["alert"]["annotations"]["leak"] == "token=***"
    )
    assert trap.received == []
    trap.close()


def test_the_rules_read_only_series_a_live_gateway_exports(gateway: Server) -> None:
    with gateway.client(gateway.admin_key) as c:
        text = c.get("/metrics").text
    exported = set()
    for line in text.splitlines():
        if line.startswith("# TYPE mlops_"):
            _, _, name, kind = line.split(" ")
            # the text format names a counter with its _total already
            suffixes = ["_bucket", "_sum", "_count"] if kind == "histogram" else [""]
            exported |= {name + s for s in suffixes}
    used = {n for rule in _rules() for n in metric_names(rule["expr"]) if n.startswith("mlops_")}
    assert used and used <= exported, sorted(used - exported)


@contextlib.contextmanager
def prometheus(tmp_path: Path, gateway: Server, key: str, alertmanager_url: str) -> Iterator[str]:
    """The shipped prometheus.yml and rules, run by the real binary: only the gateway job (its address and
    credential file rewritten), the Alertmanager's address, and 1 s intervals with every `for` at 0."""
    folder = tmp_path / "prometheus"
    (folder / "rules").mkdir(parents=True)  # also makes tmp_path
    for path in RULES.glob("*.yml"):
        (folder / "rules" / path.name).write_text(re.sub(r"(?m)^(\s+for:) \S+$", r"\1 0s", path.read_text()))
    token = tmp_path / "prometheus-token"
    token.write_text(key)
    token.chmod(0o600)
    config = yaml.safe_load((MONITORING / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "mlops-gateway"]
    job["static_configs"] = [{"targets": [gateway.url.removeprefix("http://")]}]
    job["authorization"]["credentials_file"] = str(token)
    config["scrape_configs"] = [job]
    config["global"] |= {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [
        alertmanager_url.removeprefix("http://")
    ]
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log_path = tmp_path / "prometheus.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                binary("prometheus"),
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, url, log_path)
        yield url
    finally:
        _stop(proc)
        token.unlink()


def test_a_model_metric_below_its_minimum_reaches_the_webhooks_through_the_whole_chain(
    tmp_path: Path, gateway: Server, receiver: Receiver
) -> None:
    """gateway /metrics -> real Prometheus (shipped config and rules) -> real Alertmanager (shipped
    config) -> POST /api/v1/alerts -> alert.firing at the subscribed webhook."""
    with gateway.client(gateway.admin_key) as c:
        run = c.post("/pipelines/deploy", json={"pipeline": metric_pipeline("chained")}).json()["pipeline_id"]
        assert wait_status(c, run) == "succeeded"  # accuracy 0.93, under MONITORING_METRIC_MIN's 0.95
    with (
        alertmanager(tmp_path / "am", gateway, _key(gateway, ["write"]), []) as am,
        prometheus(tmp_path / "prom", gateway, _key(gateway, ["read"]), am) as prom,
    ):
        deadline = time.monotonic() + 90
        while True:
            found = [
                e
                for e in receiver.events()
                if e["event"] == "alert.firing"
                and e["alert"]["labels"].get("alertname") == "MlopsModelMetricBelowMinimum"
                and e["alert"]["labels"].get("pipeline") == "chained"
            ]
            if found:
                break
            assert time.monotonic() < deadline, httpx.get(f"{prom}/api/v1/alerts").text
            time.sleep(0.2)
    labels = found[0]["alert"]["labels"]
    assert {k: labels[k] for k in ("pipeline", "step", "metric", "severity")} == {
        "pipeline": "chained",
        "step": "fit",
        "metric": "accuracy",
        "severity": "warning",
    }
    assert "0.93" in found[0]["alert"]["annotations"]["description"]
