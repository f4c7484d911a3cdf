"""Runs through the live gateway: the blueprint's deploy/status flow, /api/v1/runs, SSE, catalogue."""

from __future__ import annotations

import json

import httpx

from tests.api.conftest import Server, sleeper, wait_status


def test_blueprint_deploy_iris_to_success(server: Server, admin: httpx.Client) -> None:
    # on PostgreSQL nothing is kept in a SQLite file
    assert (server.home / "mlops.db").exists() == ("DATABASE_URL" not in server.env)
    r = admin.post("/pipelines/deploy", json={"pipeline": "pipeline/iris-classifier"})
    assert r.status_code == 202, r.text
    body = r.json()
    assert set(body) == {"pipeline_id", "status", "message"} and body["status"] == "queued"
    assert wait_status(admin, body["pipeline_id"], 120) == "succeeded"
    status = admin.get(f"/pipelines/{body['pipeline_id']}/status").json()
    assert set(status) == {"pipeline_id", "status", "details", "timestamp"}
    run = admin.get(f"/api/v1/runs/{body['pipeline_id']}").json()
    assert run["outputs"]["metrics"]["accuracy"] > 0.8


def test_inline_pipeline_with_parameters_and_target(admin: httpx.Client) -> None:
    docs = sleeper("inline-ok", [("a", 0.05), ("b", 0.05)])
    r = admin.post(
        "/pipelines/deploy", json={"pipeline": docs, "parameters": {}, "target": {"provider": "local"}}
    )
    assert r.status_code == 202, r.text
    run_id = r.json()["pipeline_id"]
    assert wait_status(admin, run_id) == "succeeded"
    events = admin.get(f"/api/v1/runs/{run_id}/events").json()
    types = [e["type"] for e in events]
    assert types[0] == "run.started" and types[-1] == "run.finished"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


def test_failed_run_says_why(admin: httpx.Client) -> None:
    docs = sleeper("inline-fail", [("a", 0.01), ("boom", 0.01)], fail="boom")
    run_id = admin.post("/pipelines/deploy", json={"pipeline": docs}).json()["pipeline_id"]
    assert wait_status(admin, run_id) == "failed"
    details = admin.get(f"/pipelines/{run_id}/status").json()["details"]
    assert "step boom failed" in details and "code 3" in details


def test_invalid_spec_answers_422_with_problems(admin: httpx.Client) -> None:
    r = admin.post("/pipelines/deploy", json={"pipeline": "pipeline/no-such-pipeline"})
    assert r.status_code == 422
    assert r.json()["problems"][0]["what"]
    docs = sleeper("bad-param", [("a", 0.01)])
    docs[1]["spec"]["steps"][0]["with"]["seconds"] = "slow"
    r = admin.post("/api/v1/validate", json={"pipeline": docs})
    assert r.status_code == 422
    assert any("seconds" in p["where"] for p in r.json()["problems"]), r.json()
    r = admin.post("/api/v1/validate", json={"pipeline": "pipeline/iris-classifier"})
    assert r.status_code == 200 and r.json()["status"] == "valid"
    plan = admin.post(
        "/api/v1/plan",
        json={"pipeline": "pipeline/iris-classifier", "parameters": {"estimator": "logistic_regression"}},
    )
    assert plan.status_code == 200 and len(plan.json()["steps"]) == 5
    assert admin.get("/api/v1/runs/nope").status_code == 404
    assert any(t["provider"] == "local" and t["available"] for t in admin.get("/api/v1/targets").json())


def test_targets_and_placed_plans(admin: httpx.Client) -> None:
    found = {t["provider"]: t for t in admin.get("/api/v1/targets").json()}
    assert list(found)[:5] == ["local", "k3s", "exoscale", "vastai", "runpod"]
    assert found["local"]["ready"] and found["local"]["offers"][0]["id"] == "this-machine"
    assert found["local"]["sheet"]["date"] and found["local"]["sheet"]["source"]
    assert all(t["installed"] or t["reason"] for t in found.values())
    assert admin.get("/api/v1/targets/local").json() == found["local"]
    missing = admin.get("/api/v1/targets/mars")
    assert missing.status_code == 404 and "unknown provider 'mars'" in missing.json()["detail"]
    body = {"pipeline": "pipeline/iris-classifier", "target": {"provider": "auto"}}
    steps = admin.post("/api/v1/plan", json=body).json()["steps"]
    assert {s["placement"]["provider"] for s in steps} == {"local"}  # free, and it fits
    assert all("this machine" in s["placement"]["why"] for s in steps)
    body["target"] = {"provider": "auto", "options": {"gpu_count": "two", "max_price_per_hour": -1}}
    r = admin.post("/api/v1/plan", json=body)
    assert r.status_code == 422
    wheres = sorted(p["where"] for p in r.json()["problems"])
    assert wheres == ["target.options.gpu_count", "target.options.max_price_per_hour"]


def test_list_filter_pagination_cancel_retry(admin: httpx.Client) -> None:
    docs = sleeper("inline-cancel", [("long", 30)])
    run_id = admin.post("/api/v1/runs", json={"pipeline": docs}).json()["id"]
    assert wait_status(admin, run_id, until={"running"}) == "running"
    r = admin.post(f"/api/v1/runs/{run_id}/cancel")
    assert r.status_code == 200 and r.json()["cancel_requested"]
    assert wait_status(admin, run_id, 20) == "cancelled"
    assert admin.post(f"/api/v1/runs/{run_id}/cancel").status_code == 409
    retried = admin.post(f"/api/v1/runs/{run_id}/retry")
    assert retried.status_code == 202 and retried.json()["retry_of"] == run_id
    new_id = retried.json()["id"]
    assert admin.post(f"/api/v1/runs/{new_id}/cancel").status_code == 200
    assert wait_status(admin, new_id, 20) == "cancelled"

    page = admin.get("/api/v1/runs", params={"status": "cancelled", "limit": 1}).json()
    assert page["total"] >= 2 and len(page["items"]) == 1 and page["items"][0]["status"] == "cancelled"
    second = admin.get("/api/v1/runs", params={"status": "cancelled", "limit": 1, "offset": 1}).json()
    assert second["items"][0]["id"] != page["items"][0]["id"]
    assert admin.get("/api/v1/runs", params={"status": "bogus"}).status_code == 422
    assert admin.get("/api/v1/runs", params={"limit": 0}).status_code == 422


def test_sse_streams_events_until_the_end(server: Server, admin: httpx.Client) -> None:
    docs = sleeper("inline-sse", [("a", 0.3), ("b", 0.3)])
    run_id = admin.post("/api/v1/runs", json={"pipeline": docs}).json()["id"]
    seen: list[tuple[str, dict[str, object]]] = []
    with admin.stream("GET", f"/api/v1/runs/{run_id}/logs", timeout=60) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        event = ""
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: "):
                seen.append((event, json.loads(line[len("data: ") :])))
    kinds = [k for k, _ in seen]
    assert kinds[0] == "run.started" and kinds[-1] == "end" and "step.finished" in kinds
    assert seen[-1][1]["status"] == "succeeded"
    # resuming after an event id gives only what follows
    with admin.stream("GET", f"/api/v1/runs/{run_id}/logs", headers={"Last-Event-ID": "2"}) as r:
        ids = [int(line[4:]) for line in r.iter_lines() if line.startswith("id: ")]
    assert ids and ids[0] == 3


def test_an_unknown_event_type_filter_is_refused_with_its_location(admin: httpx.Client) -> None:
    run_id = admin.post("/api/v1/runs", json={"pipeline": sleeper("logs-type", [("a", 0.1)])}).json()["id"]
    r = admin.get(f"/api/v1/runs/{run_id}/logs", params={"type": "bogus"})
    assert r.status_code == 422, r.text
    [error] = r.json()["detail"]
    assert error["loc"] == ["query", "type"] and "unknown event type 'bogus'" in error["msg"], error
    assert "step.failed" in error["msg"] and "log" in error["msg"]
    assert admin.get("/api/v1/runs/no-such-run/logs", params={"type": "logs"}).status_code == 422
    assert wait_status(admin, run_id) == "succeeded"
    with admin.stream("GET", f"/api/v1/runs/{run_id}/logs", params={"type": "step.finished"}) as ok:
        assert ok.status_code == 200
        kinds = [line[7:] for line in ok.iter_lines() if line.startswith("event: ")]
    assert kinds == ["step.finished", "end"]


def test_metrics_and_catalogue(admin: httpx.Client) -> None:
    assert admin.get("/api/v1/runs/no-such-run/events").status_code == 404
    text = admin.get("/metrics").text
    assert "mlops_runs_finished_total" in text and "mlops_http_requests_total" in text
    # full route templates (not the raw path, not an included router's own part)
    assert 'route="/api/v1/runs/{run_id}/events",status="404"' in text
    assert "no-such-run" not in text
    listing = admin.get("/api/v1/catalogue", params={"kind": "pipeline"}).json()
    assert any(i["name"] == "iris-classifier" for i in listing)
    shown = admin.get("/api/v1/catalogue/pipeline/iris-classifier").json()
    assert shown["version"] and "kind: Pipeline" in shown["text"]
    assert admin.get("/api/v1/catalogue/playbook/sklearn-train/history").json()
    assert admin.get("/api/v1/catalogue/playbook/sklearn-train/used-by").json()
    pb = sleeper("cat-entry", [("a", 0.01)])[0]
    saved = admin.post("/api/v1/catalogue", json={"spec": pb, "message": "first"})
    assert saved.status_code == 201, saved.text
    pb2 = json.loads(json.dumps(pb))
    pb2["metadata"]["version"] = "1.1.0"
    pb2["metadata"]["description"] = "second"
    ok = admin.post("/api/v1/catalogue", json={"spec": pb2, "base": "1.0.0"})
    assert ok.status_code == 201, ok.text
    pb3 = json.loads(json.dumps(pb2))
    pb3["metadata"]["version"] = "1.2.0"
    stale = admin.post("/api/v1/catalogue", json={"spec": pb3, "base": "1.0.0"})
    assert stale.status_code == 409, stale.text
    diff = admin.get(
        "/api/v1/catalogue/playbook/cat-entry-sleep/diff", params={"from": "1.0.0", "to": "1.1.0"}
    )
    assert "second" in diff.json()["diff"]
    assert admin.delete("/api/v1/catalogue/playbook/cat-entry-sleep").status_code == 200
