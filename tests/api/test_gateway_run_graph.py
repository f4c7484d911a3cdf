"""GET /api/v1/runs/{id}/graph: the run's DAG (steps and the steps each needs) from its stored plan."""

from __future__ import annotations

import httpx

from tests.api.conftest import wait_status


def test_the_graph_of_a_run_has_its_edges_and_placement(admin: httpx.Client) -> None:
    r = admin.post("/api/v1/runs", json={"pipeline": "pipeline/iris-classifier"})
    assert r.status_code == 202, r.text
    run = r.json()
    g = admin.get(f"/api/v1/runs/{run['id']}/graph")
    assert g.status_code == 200, g.text
    body = g.json()
    assert body["run"] == run["id"]
    steps = {s["id"]: s for s in body["steps"]}
    assert list(steps) == run["steps"]  # the same steps, in the run's order
    assert steps["load"]["needs"] == []
    assert steps["classify/split"]["needs"] == ["load"]
    assert "classify/split" in steps["classify/train"]["needs"]
    assert steps["load"]["playbook"].startswith("playbook/sklearn-dataset@")
    assert {s["provider"] for s in steps.values()} == {"local"}
    # nothing else of the plan: no bound parameters, entrypoints or digests
    assert set(steps["load"]) == {"id", "needs", "playbook", "provider", "deployment", "node"}
    assert steps["load"]["node"] is None  # a Ray node, for steps that ran on a ray target
    wait_status(admin, run["id"], 120)


def test_the_graph_of_an_unknown_run_is_a_404(admin: httpx.Client) -> None:
    r = admin.get("/api/v1/runs/no-such-run/graph")
    assert r.status_code == 404, r.text
