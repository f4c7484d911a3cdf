"""The chart data read from a REAL Prometheus (Debian's binary, temp config and storage, 127.0.0.1 only)
scraping a live gateway with its bearer key from a file; the pipeline placeholder escaped so no name can
change a query (proved by Prometheus's own regex engine); Prometheus gone: the gateway's history, with a
note, never a 500."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlops_nocode.monitoring.charts import CHARTS
from mlops_nocode.monitoring.promquery import PromClient, PromUnavailable, pipeline_regex, render
from tests.api.conftest import Server, free_port, sleeper, wait_status
from tests.api.test_monitoring_charts import scored

NASTY = [
    'a"} or vector(1) #',
    "a\\",
    'a\\\\"',
    ".*",
    "a|b",
    "(a)+[b]{2}$^",
    "pipeline/x@1.0.0",
    "tab\there\nnewline",
    "été ☃ \x00",
    "`$(rm -rf /)`",
    '{{pipeline}}"',
]


class Prometheus:
    """`prometheus` in the foreground on a free loopback port, scraping `target` every second."""

    def __init__(self, folder: Path, target: str, key_file: Path, port: int) -> None:
        binary = shutil.which("prometheus")
        assert binary, "these tests need Debian's prometheus: apt-get install prometheus"
        self.port = port
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {
                    "job_name": "mlops",
                    "authorization": {"type": "Bearer", "credentials_file": str(key_file)},
                    "static_configs": [{"targets": [target]}],
                }
            ],
        }
        (folder / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
        self.log = folder / "prometheus.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={folder / 'prometheus.yml'}",
                    f"--storage.tsdb.path={folder / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_up(self, timeout: float = 60.0) -> None:
        """Until the gateway target has been scraped successfully."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            with contextlib.suppress(httpx.HTTPError, ValueError):
                r = httpx.get(f"{self.url}/api/v1/query", params={"query": 'up{job="mlops"}'}, timeout=2)
                result = r.json()["data"]["result"]
                if result and result[0]["value"][1] == "1":
                    return
            time.sleep(0.25)
        raise AssertionError(f"prometheus never scraped the gateway:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Prometheus]]:
    folder = tmp_path_factory.mktemp("promstack")
    prom_port = free_port()
    server = Server(
        folder / "home",
        POLL_SECONDS="0.1",
        PROMETHEUS_URL=f"http://127.0.0.1:{prom_port}",
        PROMETHEUS_MIN_STEP="1",
    )
    server.start()
    key_file = folder / "gateway.key"
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(server.admin_key)
    prom = Prometheus(folder, f"127.0.0.1:{server.port}", key_file, prom_port)
    try:
        prom.wait_up()
        yield server, prom
    finally:
        prom.stop()
        server.stop()


def charts(client: httpx.Client, **params: Any) -> dict[str, Any]:
    r = client.get("/api/v1/monitoring/charts", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_charts_come_from_prometheus(stack: tuple[Server, Prometheus]) -> None:
    server, _ = stack
    with server.client(server.admin_key) as admin:
        run_id = admin.post("/api/v1/runs", json={"pipeline": sleeper("prom-ok", [("a", 0.01)])}).json()["id"]
        assert wait_status(admin, run_id) == "succeeded"
        deadline = time.monotonic() + 60
        while True:
            body = charts(admin, panel="overview", range=120)
            assert body["source"] == "prometheus", body
            requests = {c["id"]: c for c in body["charts"]}["api_requests"]
            drawn = [v for s in requests["series"] for v in s["values"] if v is not None and v > 0]
            if drawn:
                break
            assert time.monotonic() < deadline, body
            time.sleep(0.5)
        assert body["step"] == 1 and len(requests["x"]) <= 300
        assert {s["name"] for s in requests["series"]} <= {"200", "202", "401", "404", "422"}
        for c in body["charts"]:
            assert all(len(s["values"]) == len(c["x"]) for s in c["series"])


def test_a_model_metric_through_prometheus_by_pipeline_name(stack: tuple[Server, Prometheus]) -> None:
    server, _ = stack
    with server.client(server.admin_key) as admin:
        body = {"pipeline": scored("prom-scored"), "parameters": {"score": 0.7}}
        assert wait_status(admin, admin.post("/api/v1/runs", json=body).json()["id"]) == "succeeded"
        deadline = time.monotonic() + 60
        while True:  # until a scrape after the run has reached Prometheus
            got = charts(admin, panel="models", range=120, pipeline="prom-scored")
            assert got["source"] == "prometheus", got
            series = {s["name"]: s["values"] for s in got["charts"][0]["series"]}
            if 0.7 in series.get("prom-scored fit accuracy", []):
                break
            assert time.monotonic() < deadline, got
            time.sleep(0.5)
        assert all(name.startswith("prom-scored ") for name in series), series
        ended = {c["id"]: c for c in charts(admin, panel="overview", range=120)["charts"]}["runs_finished"]
        assert "succeeded" in {s["name"] for s in ended["series"]}


def test_every_chart_query_with_a_nasty_pipeline_is_valid_promql(stack: tuple[Server, Prometheus]) -> None:
    _, prom = stack
    client = PromClient(prom.url, 10)
    now = int(time.time())
    for name in NASTY:
        for chart in CHARTS:
            for q in chart.queries:
                client.query_range(render(q.expr, 1, name), now - 60, now, 1)  # raises when not valid


def _matches(client: PromClient, regex_of: str, value: str) -> bool:
    """Whether Prometheus's regex engine (anchored, as in a label matcher) matches `value` with the regex
    the gateway writes for the pipeline `regex_of`."""
    expr = render(
        'label_replace(label_replace(vector(1), "p", VALUE, "", ""), "m", "yes", "p", "$pipeline")',
        1,
        regex_of,
    ).replace("VALUE", json.dumps(value))
    now = int(time.time())
    series = client.query_range(expr, now - 2, now, 1)
    return any(s.labels.get("m") == "yes" for s in series)


def test_a_pipeline_name_matches_only_itself(stack: tuple[Server, Prometheus]) -> None:
    _, prom = stack
    client = PromClient(prom.url, 10)
    for name in [n for n in NASTY if "\x00" not in n]:
        assert _matches(client, name, name), name
        assert not _matches(client, name, name + "x"), name
        assert not _matches(client, name, "x" + name), name
    assert not _matches(client, ".*", "anything") and _matches(client, None, "anything")  # type: ignore[arg-type]
    assert pipeline_regex("a.b") == "a\\.b"


def test_prometheus_down_answers_from_the_gateway_with_a_note(stack: tuple[Server, Prometheus]) -> None:
    server, prom = stack
    prom.stop()
    with pytest.raises(PromUnavailable):
        PromClient(prom.url, 2).query_range("up", 0, 1, 1)
    with server.client(server.admin_key) as admin:
        body = charts(admin, panel="overview", range=600)
    assert body["source"] == "gateway" and "PROMETHEUS_URL" in body["note"]
    assert prom.url not in json.dumps(body)
    ended = {c["id"]: c for c in body["charts"]}["runs_finished"]
    assert any(v for s in ended["series"] if s["name"] == "succeeded" for v in s["values"])
