"""The issue's check: Debian's real Prometheus, started by `mlops monitoring up` (with Alertmanager),
scrapes a live gateway with the read key `up` created for it; a pipeline whose step reports a metric runs
through the gateway, and its series are read back through PromQL. A wrong credential turns the target
down; `down` leaves no process behind and revokes the keys."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from mlops_nocode.monitoring.promconfig import GATEWAY_JOB, WORKER_JOB
from tests.api.conftest import Server, free_port, postgres, wait_status
from tests.metric_pipeline import metric_pipeline
from tests.monitoring.stack_support import cli, need_binaries, poll, value_of

__all__ = ["postgres"]  # the session's throwaway PostgreSQL cluster (tests/api/conftest.py)
PIPELINE = "stack-e2e"
DOCS = metric_pipeline(PIPELINE, (0.875,))


class Stack:
    """A gateway and the monitoring stack `mlops monitoring up` started against it."""

    def __init__(self, server: Server, state: dict[str, Any]) -> None:
        self.server = server
        self.state = state
        self.prometheus = str(state["prometheus"]["url"])
        self.monitoring = server.home / "monitoring"


@contextlib.contextmanager
def worker(server: Server, port: int) -> Iterator[None]:
    """`mlops worker --metrics-port PORT` on the gateway's MLOPS_HOME, until the block ends."""
    argv = [sys.executable, "-m", "mlops_nocode.cli.main", "worker", "--metrics-port", str(port)]
    with open(server.home.parent / "worker.log", "ab") as log:
        proc = subprocess.Popen(
            argv, env=server.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        poll("the worker's metrics", lambda: _answers(f"http://127.0.0.1:{port}/metrics"), 60)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    need_binaries()
    server = Server(tmp_path_factory.mktemp("stack") / "home", POLL_SECONDS="0.1")
    server.start()
    metrics_port = free_port()
    try:
        with worker(server, metrics_port):
            up = cli(
                server.home,
                "monitoring", "up", "--gateway", server.url, "--prometheus-port", str(free_port()),
                "--alertmanager-port", str(free_port()), "--scrape-interval", "1s",
                "--worker", f"127.0.0.1:{metrics_port}", "--json",
            )  # fmt: skip
            assert up.returncode == 0, up.stderr
            yield Stack(server, json.loads(up.stdout))
    finally:
        cli(server.home, "monitoring", "down")
        server.stop()


def test_up_prints_the_urls_and_keeps_secrets_in_0600_files(stack: Stack) -> None:
    state = stack.state
    assert state["already_up"] is False and state["gateway"] == stack.server.url
    assert state["prometheus"]["url"].startswith("http://127.0.0.1:")
    assert state["alertmanager"]["url"].startswith("http://127.0.0.1:")
    for name in ("prometheus.key", "alertmanager.key", "stack.json"):
        assert (stack.monitoring / name).stat().st_mode & 0o777 == 0o600, name
    key = (stack.monitoring / "prometheus.key").read_text()
    for name in ("prometheus.yml", "alertmanager.yml", "stack.json", "prometheus.log", "alertmanager.log"):
        assert key not in (stack.monitoring / name).read_text(), f"the key leaked into {name}"
    # the scrape key reads, and only reads
    with stack.server.client(key) as c:
        assert c.get("/metrics").status_code == 200
        assert c.post("/pipelines/deploy", json={"pipeline": DOCS}).status_code == 403


def test_prometheus_scrapes_the_gateway_and_reads_the_step_metric(stack: Stack) -> None:
    url = stack.prometheus
    poll("the gateway target up", lambda: value_of(url, f'up{{job="{GATEWAY_JOB}"}}') == 1.0)
    poll("the worker target up", lambda: value_of(url, f'up{{job="{WORKER_JOB}"}}') == 1.0)
    with stack.server.client(stack.server.admin_key) as admin:
        r = admin.post("/pipelines/deploy", json={"pipeline": DOCS})
        assert r.status_code == 202, r.text
        assert wait_status(admin, r.json()["pipeline_id"], 120) == "succeeded"
    metric = f'mlops_step_metric{{pipeline="{PIPELINE}",step="fit",metric="accuracy"}}'
    assert poll(metric, lambda: value_of(url, metric)) == 0.875
    finished = f'mlops_runs_finished_total{{pipeline="{PIPELINE}",status="succeeded"}}'
    assert poll(finished, lambda: value_of(url, finished)) == 1.0
    # Prometheus sends its alerts to the Alertmanager `up` started
    am = stack.state["alertmanager"]["url"]

    def alertmanagers() -> list[str]:
        body = httpx.get(f"{url}/api/v1/alertmanagers", timeout=5).json()
        return [a["url"] for a in body["data"]["activeAlertmanagers"] if a["url"].startswith(am)]

    poll("the Alertmanager among Prometheus's", alertmanagers)


def test_a_wrong_credential_turns_the_target_down(stack: Stack) -> None:
    url, key_file = stack.prometheus, stack.monitoring / "prometheus.key"
    good = key_file.read_text()
    poll("the gateway target up", lambda: value_of(url, f'up{{job="{GATEWAY_JOB}"}}') == 1.0)
    key_file.write_text("mlk_0000000000000000_wrong")  # Prometheus reads the file at each scrape
    try:
        poll("the gateway target down", lambda: value_of(url, f'up{{job="{GATEWAY_JOB}"}}') == 0.0)
        status = cli(stack.server.home, "monitoring", "status", "--json")
        target = json.loads(status.stdout)["gateway_target"]
        assert target["health"] == "down" and "401" in target["last_error"], target
    finally:
        key_file.write_text(good)
    poll("the gateway target up again", lambda: value_of(url, f'up{{job="{GATEWAY_JOB}"}}') == 1.0)


def test_up_twice_says_it_is_already_up(stack: Stack) -> None:
    again = cli(stack.server.home, "monitoring", "up", "--json")
    assert again.returncode == 0, again.stderr
    assert "already up" in again.stderr
    assert json.loads(again.stdout)["prometheus"]["pid"] == stack.state["prometheus"]["pid"]
    other = cli(stack.server.home, "monitoring", "up", "--gateway", "http://127.0.0.1:1")
    assert other.returncode == 0 and "`mlops monitoring down` first" in other.stderr, other.stderr
    status = cli(stack.server.home, "monitoring", "status", "--json")
    answer = json.loads(status.stdout)
    assert answer["prometheus"]["ready"] and answer["alertmanager"]["ready"]
    jobs = {t["job"] for t in answer["targets"]}
    assert jobs == {GATEWAY_JOB, WORKER_JOB, "prometheus", "alertmanager"}, answer["targets"]


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_down_stops_everything_and_revokes_the_keys(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest, database: str
) -> None:
    """On its own gateway (SQLite, or PostgreSQL where the keys are created through DATABASE_URL): the
    scrape works with the key `up` created; after `down` no process of the stack is left and its keys no
    longer work."""
    need_binaries()
    env = (
        {"DATABASE_URL": request.getfixturevalue("postgres").create_database()}
        if database != "sqlite"
        else {}
    )
    server = Server(tmp_path_factory.mktemp("stack-down") / "home", **env)
    server.start()
    try:
        ports = [str(free_port()), str(free_port())]
        # no --gateway: the URL `mlops up` stored for this MLOPS_HOME
        options = ["--prometheus-port", ports[0], "--alertmanager-port", ports[1], "--json"]
        up = cli(server.home, "monitoring", "up", *options, env=env)
        assert up.returncode == 0, up.stderr
        state = json.loads(up.stdout)
        assert state["gateway"] == server.url
        pids = [state["prometheus"]["pid"], state["alertmanager"]["pid"]]
        family = {p for pid in pids for p in [psutil.Process(pid), *psutil.Process(pid).children(True)]}
        key = (server.home / "monitoring" / "prometheus.key").read_text()
        with server.client(key) as c:
            assert c.get("/metrics").status_code == 200
        down = cli(server.home, "monitoring", "down", env=env)
        assert down.returncode == 0, down.stderr
        for p in family:
            assert not p.is_running() or p.status() == psutil.STATUS_ZOMBIE, p
        assert not any(
            str(server.home / "monitoring") in " ".join(_cmdline(p)) for p in psutil.process_iter()
        )
        assert not (server.home / "monitoring" / "prometheus.key").exists()
        assert not (server.home / "monitoring" / "alertmanager.key").exists()
        with server.client(key) as c:
            assert c.get("/metrics").status_code == 401
        assert json.loads(cli(server.home, "monitoring", "status", "--json").stdout) == {"running": False}
        again = cli(server.home, "monitoring", "down", env=env)
        assert again.returncode == 0 and "no monitoring stack" in again.stderr
    finally:
        cli(server.home, "monitoring", "down", env=env)
        server.stop()


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


def test_the_shipped_rules_are_loaded(stack: Stack) -> None:
    """Prometheus evaluates every rule file shipped in deploy/monitoring/prometheus/rules/."""
    from mlops_nocode.monitoring.files import shipped_monitoring

    shipped = sorted(p.name for p in (shipped_monitoring() / "prometheus" / "rules").glob("*.yml"))
    body = httpx.get(f"{stack.prometheus}/api/v1/rules", timeout=5).json()
    loaded = sorted({Path(g["file"]).name for g in body["data"]["groups"]})
    assert loaded == shipped


def test_alertmanager_delivers_alerts_to_the_gateway(stack: Stack) -> None:
    """An alert fired at the stack's Alertmanager reaches the gateway's receiver with the write key `up`
    created (the gateway counts it: mlops_alerts_received_total, read back through Prometheus)."""
    am = stack.state["alertmanager"]["url"]
    alert = {"labels": {"alertname": "StackE2E", "severity": "warning"}, "annotations": {"summary": "test"}}
    r = httpx.post(f"{am}/api/v2/alerts", json=[alert], timeout=5)
    assert r.status_code == 200, r.text
    received = 'sum(mlops_alerts_received_total{status="firing"})'
    assert poll("the alert at the gateway", lambda: value_of(stack.prometheus, received), 60) >= 1.0
