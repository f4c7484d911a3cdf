"""The monitoring page's chart data from the gateway's own history (no PROMETHEUS_URL), on a real gateway
(SQLite and PostgreSQL) after real runs: one whose step reports metrics (twice, different values), one
that fails."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mlops_nocode.monitoring.charts import PANELS, charts_of
from mlops_nocode.runs.db import Database
from mlops_nocode.runs.deployrecords import DeploymentRecords
from tests.api.conftest import Server, sleeper, wait_status

CODE = (
    "def main(ctx, score: float = 0.5):\n"
    "    ctx.metric('accuracy', score)\n"
    "    ctx.metric('loss', 1 - score)\n"
    "    return {}\n"
)


def scored(name: str) -> list[dict[str, Any]]:
    """A pipeline whose one step reports `accuracy` = its `score` parameter, and `loss`."""
    playbook = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Playbook",
        "metadata": {"name": f"{name}-score", "version": "1.0.0"},
        "spec": {
            "runtime": "python",
            "python": {"code": CODE},
            "parameters": {"type": "object", "properties": {"score": {"type": "number", "default": 0.5}}},
        },
    }
    pipeline = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Pipeline",
        "metadata": {"name": name, "version": "1.0.0"},
        "spec": {
            "parameters": {"type": "object", "properties": {"score": {"type": "number", "default": 0.5}}},
            "steps": [
                {"id": "fit", "uses": f"playbook/{name}-score", "with": {"score": "${{ params.score }}"}}
            ],
        },
    }
    return [playbook, pipeline]


@pytest.fixture(scope="module")
def history(server: Server, admin: httpx.Client) -> dict[str, str]:
    """Three ended runs: the scored pipeline twice (0.5 then 0.75), a failing one; their pipelines."""
    ids = []
    for score in (0.5, 0.75):
        r = admin.post(
            "/api/v1/runs", json={"pipeline": scored("mon-scored"), "parameters": {"score": score}}
        )
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
        assert wait_status(admin, ids[-1]) == "succeeded"
    failing = admin.post("/api/v1/runs", json={"pipeline": sleeper("mon-fail", [("a", 0.01)], fail="a")})
    assert wait_status(admin, failing.json()["id"]) == "failed"
    assert admin.get(f"/api/v1/runs/{ids[0]}").json()["pipeline"] == "pipeline/mon-scored@1.0.0"
    return {"scored": "mon-scored", "failed": "mon-fail", "run": ids[0]}  # by name, as /metrics labels


def charts(admin: httpx.Client, **params: Any) -> dict[str, Any]:
    r = admin.get("/api/v1/monitoring/charts", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def by_id(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in body["charts"]}


def total(chart: dict[str, Any], name: str) -> float:
    return sum(v or 0 for s in chart["series"] if s["name"] == name for v in s["values"])


def test_pipelines_with_runs_and_metrics(admin: httpx.Client, history: dict[str, str]) -> None:
    listed = {p["name"]: p for p in admin.get("/api/v1/monitoring/pipelines").json()}
    assert listed[history["scored"]]["runs"] == 2 and listed[history["scored"]]["has_metrics"]
    assert listed[history["failed"]]["runs"] == 1 and not listed[history["failed"]]["has_metrics"]


def test_every_panel_answers_its_charts_in_order_bounded(
    admin: httpx.Client, history: dict[str, str]
) -> None:
    for panel in PANELS:
        body = charts(admin, panel=panel, range=30 * 24 * 3600)
        assert body["panel"] == panel and body["source"] == "gateway"
        assert [c["id"] for c in body["charts"]] == [c.id for c in charts_of(panel)]
        assert body["start"] < body["end"] and body["step"] >= 15
        for c in body["charts"]:
            assert len(c["x"]) <= 300
            assert all(len(s["values"]) == len(c["x"]) for s in c["series"])
            if c["id"] in {"api_requests", "api_latency"}:  # not in the database
                assert c["series"] == [] and "PROMETHEUS_URL" in c["note"]
            if c["id"] == "workers_live":  # only now
                (workers,) = c["series"]
                assert workers["values"][-1] >= 1 and set(workers["values"][:-1]) == {None}


def test_overview_counts_the_runs_that_ended_and_the_failure_rate(
    admin: httpx.Client, history: dict[str, str]
) -> None:
    overview = by_id(charts(admin, panel="overview", range=3600))
    ended = overview["runs_finished"]
    assert total(ended, "succeeded") >= 2 and total(ended, "failed") >= 1
    rates = [v for s in overview["failure_rate"]["series"] for v in s["values"] if v is not None]
    assert rates and all(0 <= v <= 1 for v in rates) and max(rates) > 0
    assert overview["api_requests"]["series"] == [] and "Prometheus" in overview["api_requests"]["note"]
    active = overview["active_queued"]
    assert [s["name"] for s in active["series"]] == ["running", "queued"]


def test_runs_panel_per_pipeline(admin: httpx.Client, history: dict[str, str]) -> None:
    runs = by_id(charts(admin, panel="runs", range=3600, pipeline=history["scored"]))
    assert [s["name"] for s in runs["step_duration"]["series"]] == ["fit"]
    assert runs["step_failures"]["series"] == []
    durations = [v for s in runs["run_duration"]["series"] for v in s["values"] if v is not None]
    assert durations and min(durations) > 0
    failed = by_id(charts(admin, panel="runs", range=3600, pipeline=history["failed"]))
    assert total(failed["step_failures"], "a") >= 1


def test_models_panel_draws_each_metric_across_the_runs(admin: httpx.Client, history: dict[str, str]) -> None:
    chart = by_id(charts(admin, panel="models", range=3600, pipeline=history["scored"]))["model_metrics"]
    assert len(chart["x"]) == 2 and chart["x"] == sorted(chart["x"])
    series = {s["name"]: s["values"] for s in chart["series"]}
    assert series == {"fit accuracy": [0.5, 0.75], "fit loss": [0.5, 0.25]}
    every = by_id(charts(admin, panel="models", range=3600))["model_metrics"]
    assert f"{history['scored']} fit accuracy" in {s["name"] for s in every["series"]}


def test_costs_of_local_runs_are_empty_with_a_note(admin: httpx.Client, history: dict[str, str]) -> None:
    costs = by_id(charts(admin, panel="costs", range=3600))
    assert (
        costs["cost_per_hour"]["series"] == [] and "local runs cost nothing" in costs["cost_per_hour"]["note"]
    )


def test_costs_of_a_priced_deployment(server: Server, admin: httpx.Client, history: dict[str, str]) -> None:
    """A remote deployment (its cloud is out of reach here: its record is written as the gateway's
    deployment code writes it) bills from provisioning until destroyed."""
    records = DeploymentRecords(
        Database(server.env.get("DATABASE_URL") or f"sqlite:///{server.home / 'mlops.db'}")
    )
    records.record(history["run"], "gpu", "vastai", "provisioning", price_per_hour=0.5)
    costs = by_id(charts(admin, panel="costs", range=900))
    (per_hour,) = costs["cost_per_hour"]["series"]
    assert (
        per_hour["name"] == "vastai"
        and per_hour["values"][-1] == 0.5
        and costs["cost_per_hour"]["note"] is None
    )
    records.record(history["run"], "gpu", "vastai", "destroyed")
    costs = by_id(charts(admin, panel="costs", range=900))
    (spent,) = costs["cost_spent"]["series"]
    assert spent["name"] == "vastai" and 0 < sum(v or 0 for v in spent["values"]) < 0.5
    assert costs["cost_per_hour"]["series"][0]["values"][-1] == 0  # destroyed: no longer billed
    records.db.close()


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"panel": "nope"}, "query.panel"),
        ({"panel": 'overview"}) or vector(1)'}, "query.panel"),
        ({"range": "abc"}, "query.range"),
        ({"range": "10"}, "query.range"),
        ({"range": str(10**12)}, "query.range"),
        ({"range": "1e3"}, "query.range"),
        ({"panel": "runs", "pipeline": "no-such-pipeline"}, "query.pipeline"),
        ({"panel": "runs", "pipeline": '.*"} or vector(1) #'}, "query.pipeline"),
        ({"panel": "models", "pipeline": ""}, "query.pipeline"),
        ({"panel": "models", "pipeline": "x" * 301}, "query.pipeline"),
    ],
)
def test_bad_parameters_are_located_problems(admin: httpx.Client, params: dict[str, str], where: str) -> None:
    r = admin.get("/api/v1/monitoring/charts", params=params)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["detail"] == "invalid" and [p["where"] for p in body["problems"]] == [where]
    assert all(p["fix"] for p in body["problems"])


def test_read_scope_is_enough_and_a_credential_is_needed(server: Server, admin: httpx.Client) -> None:
    key = admin.post("/api/v1/keys", json={"name": "mon-reader", "scopes": ["read"]})
    assert key.status_code == 201, key.text
    with server.client(key.json()["key"]) as reader:
        assert reader.get("/api/v1/monitoring/charts", params={"panel": "costs"}).status_code == 200
        assert reader.get("/api/v1/monitoring/pipelines").status_code == 200
    with server.client() as anonymous:
        assert anonymous.get("/api/v1/monitoring/charts").status_code == 401
