"""The RAG chatbot example through a real gateway (`mlops up`, SQLite): run it with no model, read its
evaluation metrics from the API, find its chat service stopped; keep it serving on request, ask it a
question, stop it with DELETE /api/v1/services/NAME (no orphan)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.conftest import Server, wait_status
from tests.conftest import none_left


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    s = Server(tmp_path_factory.mktemp("gw-rag") / "home", POLL_SECONDS="0.1")
    s.start()
    try:
        with s.client(s.admin_key) as c:
            c.timeout = httpx.Timeout(60)
            yield c
    finally:
        s.stop()


def run(gw: httpx.Client, **params: Any) -> dict[str, Any]:
    r = gw.post("/pipelines/deploy", json={"pipeline": "pipeline/rag-chatbot", "parameters": params})
    assert r.status_code == 202, r.text
    run_id = r.json()["pipeline_id"]
    assert wait_status(gw, run_id, 300) == "succeeded", gw.get(f"/api/v1/runs/{run_id}").text
    return dict(gw.get(f"/api/v1/runs/{run_id}").json())


def test_the_example_runs_and_its_service_stops(gw: httpx.Client) -> None:
    outputs = run(gw)["outputs"]
    metrics = outputs["metrics"]
    assert metrics["hit_rate_at_k"] >= 0.8 and metrics["generated_share"] == 0
    name = outputs["endpoint"]["service"]
    assert none_left(f"--service {name}")
    assert all(s["name"] != name or s["state"] != "healthy" for s in gw.get("/api/v1/services").json())


def test_kept_service_answers_until_deleted(gw: httpx.Client) -> None:
    endpoint = run(gw, keep_serving=True)["outputs"]["endpoint"]
    listed = {s["name"]: s for s in gw.get("/api/v1/services").json()}
    assert listed[endpoint["service"]]["state"] == "healthy"
    body = httpx.post(endpoint["url"] + "/chat", json={"question": "Where are secrets stored?"}).json()
    assert body["mode"] == "extractive" and body["citations"][0]["source"] == "secrets.md"
    assert gw.delete(f"/api/v1/services/{endpoint['service']}").status_code == 200
    assert none_left(f"--service {endpoint['service']}")
