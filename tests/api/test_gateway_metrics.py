"""/metrics of a live gateway (SQLite and PostgreSQL): every family of monitoring.names with its type
and labels, and the values after real runs (a step reporting a metric, a failing step, a queued run),
after a remote Runner's reports, and a worker process's own /metrics port."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mlops_nocode.monitoring import names
from mlops_nocode.runs.db import Database
from mlops_nocode.runs.runtoken import issue_run_token
from mlops_nocode.runs.service import RunService
from tests.api.conftest import NewDb, Server, sleeper, wait_status
from tests.metric_pipeline import metric_pipeline

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scorer(name: str) -> list[dict[str, Any]]:
    """A pipeline whose step `fit` reports accuracy 0.5 then 0.93 (the last value is the one kept)."""
    return metric_pipeline(name, (0.5, 0.93))


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, new_db: NewDb) -> Iterator[Server]:
    env = {
        "WORKERS": "1",
        "POLL_SECONDS": "0.1",
        "WORKER_HEARTBEAT_SECONDS": "0.5",
        "MONITORING_BUDGET_PER_HOUR": "2.5",
        "MONITORING_METRIC_MIN": '{"accuracy": 0.9}',
    }
    s = Server(tmp_path_factory.mktemp("metrics") / "home", **env, **new_db())
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def admin(gw: Server) -> Iterator[httpx.Client]:
    with gw.client(gw.admin_key) as c:
        yield c


def scrape(client: httpx.Client) -> tuple[dict[str, str], Samples]:
    """(family name -> type, sample -> value) of a live /metrics."""
    r = client.get("/metrics")
    assert r.status_code == 200, r.text
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(r.text):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return types, samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def poll(client: httpx.Client, check: Callable[[Samples], bool], what: str, timeout: float = 30.0) -> Samples:
    deadline = time.monotonic() + timeout
    while True:
        _, samples = scrape(client)
        if check(samples):
            return samples
        assert time.monotonic() < deadline, f"{what}: not seen in /metrics after {timeout}s"
        time.sleep(0.2)


def test_every_family_is_exported_with_its_type_and_labels(admin: httpx.Client) -> None:
    admin.get("/health")
    types, samples = scrape(admin)
    for m in names.METRICS:
        # prometheus_client's parser names a counter family without `_total`
        assert types.get(m.name) == m.kind, (m.name, types.get(m.name))
        for (sample, labels), _ in samples.items():
            if sample in m.series_names():
                assert {k for k, _ in labels} - {"le"} == set(m.labels), (sample, labels)
    assert set(types) >= {m.name for m in names.METRICS}
    assert value(samples, "mlops_cost_budget_per_hour_usd") == 2.5
    assert value(samples, "mlops_step_metric_min", metric="accuracy") == 0.9
    assert (value(samples, "mlops_artifact_store_free_bytes") or 0) > 0
    assert value(samples, "mlops_alerts_received_total", status="firing") is None  # none received yet


def test_values_after_real_runs(admin: httpx.Client) -> None:
    ok = admin.post("/pipelines/deploy", json={"pipeline": scorer("scored")}).json()["pipeline_id"]
    assert wait_status(admin, ok) == "succeeded"
    bad = admin.post("/pipelines/deploy", json={"pipeline": sleeper("broken", [("a", 0.01)], fail="a")})
    assert wait_status(admin, bad.json()["pipeline_id"]) == "failed"
    # one long run holds the only worker, the next waits in the queue
    long = admin.post("/pipelines/deploy", json={"pipeline": sleeper("long", [("a", 120)])}).json()
    queued = admin.post("/pipelines/deploy", json={"pipeline": sleeper("waits", [("a", 0.01)])}).json()
    try:
        samples = poll(
            admin,
            lambda s: (
                value(s, "mlops_runs_active", target="local") == 1 and value(s, "mlops_queue_depth") == 1
            ),
            "one active run and one queued",
        )
        assert (
            value(samples, "mlops_runs_finished_total", status="succeeded", target="local", pipeline="scored")
            == 1
        )
        assert (
            value(samples, "mlops_runs_finished_total", status="failed", target="local", pipeline="broken")
            == 1
        )
        assert value(samples, "mlops_runs_started_total", target="local", pipeline="scored") == 1
        assert (
            value(
                samples,
                "mlops_run_duration_seconds_count",
                status="succeeded",
                target="local",
                pipeline="scored",
            )
            == 1
        )
        assert (value(samples, "mlops_queue_oldest_age_seconds") or 0) >= 0
        assert (value(samples, "mlops_queue_wait_seconds_count", target="local") or 0) >= 3
        assert value(samples, "mlops_step_metric", pipeline="scored", step="fit", metric="accuracy") == 0.93
        fit = {"pipeline": "scored", "step": "fit", "runtime": "python", "status": "succeeded"}
        assert value(samples, "mlops_step_duration_seconds_count", **fit) == 1
        assert value(samples, "mlops_step_duration_seconds_bucket", le="+Inf", **fit) == 1
        failed = {"pipeline": "broken", "step": "a", "runtime": "command", "status": "failed"}
        assert value(samples, "mlops_step_duration_seconds_count", **failed) == 1
        assert value(samples, "mlops_workers_live") == 1
        ages = [v for (n, _), v in samples.items() if n == "mlops_worker_heartbeat_age_seconds"]
        assert len(ages) == 1 and ages[0] < 30
        assert value(samples, "mlops_cost_per_hour_usd", target="local") == 0
        assert (value(samples, "mlops_run_heartbeat_age_max_seconds") or 0) < 30
        # route templates, never run ids, as label values
        text = admin.get("/metrics").text
        assert ok not in text and 'route="/pipelines/{pipeline_id}/status"' in text
    finally:
        admin.post(f"/api/v1/runs/{queued['pipeline_id']}/cancel")
        admin.post(f"/api/v1/runs/{long['pipeline_id']}/cancel")
        wait_status(admin, long["pipeline_id"])
    samples = poll(admin, lambda s: value(s, "mlops_runs_active", target="local") == 0, "no active run")
    assert value(samples, "mlops_queue_depth") == 0
    assert (
        value(samples, "mlops_runs_finished_total", status="cancelled", target="local", pipeline="waits") == 1
    )


def test_a_remote_runners_reports_reach_metrics(gw: Server, admin: httpx.Client) -> None:
    """What a Runner on another machine reports (step ends, throttler waits, metrics) counts the same."""
    run_id = admin.post("/pipelines/deploy", json={"pipeline": scorer("remote")}).json()["pipeline_id"]
    assert wait_status(admin, run_id) == "succeeded"  # the local worker ran it; now a "remote" run:
    db = Database(gw.env.get("DATABASE_URL") or f"sqlite:///{gw.home / 'mlops.db'}")
    try:
        service = RunService(db)
        created = service.create(scorer("remote"))
        claim = None
        deadline = time.monotonic() + 30
        while claim is None or claim["id"] != created["id"]:
            # the gateway's own worker may take it first: cancel and try another until we hold one
            assert time.monotonic() < deadline
            if claim is not None:
                service.finish(claim["id"], "remote:1", "cancelled", None, None)
            claim = service.claim("remote:1")
            if claim is None:
                created = service.create(scorer("remote"))
    finally:
        db.close()
    secret = (gw.home / "secret_key").read_text().strip()
    token = issue_run_token(secret, created["id"], "remote:1", claim["attempts"], 3600)
    headers = {"Authorization": f"Bearer {token}"}
    events = [
        {"type": "step.started", "step": "fit", "ts": time.time(), "data": {}},
        {"type": "metric", "step": "fit", "ts": time.time(), "data": {"name": "accuracy", "value": 0.71}},
        {"type": "metric", "step": "fit", "ts": time.time(), "data": {"name": "f1", "value": "NaN"}},
        {"type": "throttle", "step": None, "ts": time.time(), "data": {"waited": 2.0}},
        {
            "type": "step.finished",
            "step": "fit",
            "ts": time.time(),
            "data": {"status": "succeeded", "duration": 42.0},
        },
    ]
    url = f"{gw.url}/api/v1/runs/{created['id']}"
    for _ in range(2):  # sent twice (a lost answer): counted once
        r = httpx.post(f"{url}/report", json={"first_seq": 1, "events": events}, headers=headers)
        assert r.status_code == 200, r.text
    assert httpx.post(f"{url}/finish", json={"status": "succeeded"}, headers=headers).json()["recorded"]
    _, samples = scrape(admin)
    assert value(samples, "mlops_step_metric", pipeline="remote", step="fit", metric="accuracy") == 0.71
    assert value(samples, "mlops_step_metric", pipeline="remote", step="fit", metric="f1") is None
    assert value(samples, "mlops_throttle_wait_seconds_count") == 1
    assert value(samples, "mlops_throttle_wait_seconds_bucket", le="5.0") == 1
    assert value(samples, "mlops_throttle_wait_seconds_bucket", le="1.0") == 0
    fit = {"pipeline": "remote", "step": "fit", "runtime": "python", "status": "succeeded"}
    assert value(samples, "mlops_step_duration_seconds_bucket", le="60.0", **fit) == 2  # the local run's too
    assert value(samples, "mlops_step_duration_seconds_bucket", le="30.0", **fit) == 1


def test_a_worker_process_beats_and_serves_its_own_metrics(gw: Server, admin: httpx.Client) -> None:
    env = {**gw.env, "WORKER_HEARTBEAT_SECONDS": "0.5"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops_nocode.cli.main", "worker", "--gateway", gw.url, "--metrics-port", "0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stderr is not None
        port = None
        deadline = time.monotonic() + 60
        for line in proc.stderr:  # the worker prints where its metrics are, once it listens
            found = re.search(r"worker metrics at http://127\.0\.0\.1:(\d+)/metrics", line)
            if found:
                port = int(found.group(1))
                break
            assert time.monotonic() < deadline
        assert port is not None, "the worker never printed its metrics URL"
        own = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert "process_resident_memory_bytes" in own
        assert 'mlops_worker_runs_executed_total{status="succeeded"} 0.0' in own
        worker = f":{proc.pid}:t0"
        poll(admin, lambda s: value(s, "mlops_workers_live") == 2, "the worker process's beat")
        _, samples = scrape(admin)
        assert any(
            n == "mlops_worker_heartbeat_age_seconds" and dict(k)["worker"].endswith(worker)
            for n, k in samples
        )
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        _, samples = scrape(admin)  # a clean stop removes its row at once
        assert not any(dict(k).get("worker", "").endswith(worker) for _, k in samples)
        assert value(samples, "mlops_workers_live") == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def test_metrics_can_be_turned_off(tmp_path: Path) -> None:
    s = Server(tmp_path / "home", WORKERS="0", METRICS_ENABLED="false")
    s.start()
    try:
        with s.client(s.admin_key) as c:
            assert c.get("/metrics").status_code == 404
            assert c.get("/api/v1/runs").status_code == 200
    finally:
        s.stop()
