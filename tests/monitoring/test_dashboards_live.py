"""Every query of the generated dashboards names only series a live gateway really exports: a real
`mlops up` runs a pipeline whose step reports a metric, then its `/metrics` (read with the admin key)
is parsed with prometheus_client's parser and compared with the names in each panel's PromQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mlops_nocode.monitoring import dashboard_checks as checks
from mlops_nocode.monitoring import dashboards as boards
from tests.api.conftest import Server, wait_status
from tests.metric_pipeline import metric_pipeline

PIPELINE = "dash-live"


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    server = Server(tmp_path_factory.mktemp("dash") / "home", POLL_SECONDS="0.1")
    server.start()
    try:
        with server.client(server.admin_key) as client:
            yield client
    finally:
        server.stop()


def exported(text: str) -> tuple[set[str], list[Any]]:
    """The series names an exposition declares (by family type) or carries, and its samples."""
    names: set[str] = set()
    samples: list[Any] = []
    for family in text_string_to_metric_families(text):
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names |= {family.name + s for s in ("_bucket", "_sum", "_count")}
        else:
            names.add(family.name)
        names |= {s.name for s in family.samples}
        samples += family.samples
    return names, samples


def test_every_panel_queries_series_the_gateway_exports(admin: httpx.Client) -> None:
    r = admin.post("/api/v1/runs", json={"pipeline": metric_pipeline(PIPELINE, (0.875,), step="evaluate")})
    assert r.status_code in (200, 201, 202), r.text
    assert wait_status(admin, r.json()["id"]) == "succeeded"

    deadline = time.monotonic() + 30
    while True:  # the step's metric shows once the gateway has recorded the run's end
        scrape = admin.get("/metrics")
        assert scrape.status_code == 200, scrape.text
        names, samples = exported(scrape.text)
        reported = [
            s
            for s in samples
            if s.name == "mlops_step_metric"
            and s.labels.get("pipeline") == PIPELINE
            and s.labels.get("metric") == "accuracy"
        ]
        if reported or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [(s.labels["step"], s.value) for s in reported] == [("evaluate", 0.875)], (
        "the models dashboard has nothing to draw: mlops_step_metric lacks the step's metric; it has "
        + repr([line for line in scrape.text.splitlines() if "mlops_step_metric" in line][:20])
    )

    missing: dict[str, set[str]] = {}
    for spec in boards.DASHBOARDS:
        doc = boards.build(spec)
        for where, target in checks.targets(doc):
            unknown = checks.metric_names(target["expr"]) - names
            if unknown:
                missing[where] = unknown
        if checks.variable_metrics(doc) - names:
            missing[f"{spec.uid} variables"] = checks.variable_metrics(doc) - names
    assert not missing, f"panels query series the live gateway does not export: {missing}"
