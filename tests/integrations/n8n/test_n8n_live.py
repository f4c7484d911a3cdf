"""Against a real n8n and a real gateway: `mlops n8n push` installs the shipped workflows (in place, never
twice); a trigger makes n8n call our gateway, the pipeline runs, our signed webhook resumes n8n, its
execution ends `success` and its notify step reaches a receiver this test runs; an exported pipeline runs
the same way; the `n8n-trigger` playbook gets a workflow's result; a screenshot shows the canvas."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import Server, sleeper, wait_status
from tests.integrations.n8n.conftest import N8nServer
from tests.integrations.n8n.receiver import Receiver

ROOT = Path(__file__).resolve().parents[3]
DEPLOY_WAIT = "MLOps: deploy a pipeline and wait for its end"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("gw") / "home", POLL_SECONDS="0.1", WEBHOOK_BACKOFF="0.2")
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def mlops(n8n: N8nServer, gateway: Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MLOPS_HOME": str(gateway.home.parent / "cli-home"),
        "MLOPS_URL": gateway.url,
        "MLOPS_TOKEN": gateway.admin_key,
        "N8N_API_URL": n8n.url,
        "N8N_API_KEY": n8n.api_key,
    }
    return subprocess.run(
        [sys.executable, "-m", "mlops_nocode.cli.main", "n8n", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def pushed(n8n: N8nServer, gateway: Server, receiver: Receiver) -> dict[str, dict[str, Any]]:
    """The shipped workflows pushed (twice: the second run updates in place), by name."""
    for _ in range(2):
        r = mlops(n8n, gateway, "push", "--notify-url", receiver.url, "--json")
        assert r.returncode == 0, r.stdout + r.stderr
    with n8n.api() as c:
        workflows = c.get("/workflows").json()["data"]
    return {w["name"]: w for w in workflows}


def wait_execution(n8n: N8nServer, workflow_id: str, after: int = 0, timeout: float = 120) -> dict[str, Any]:
    """The first execution of the workflow with an id above `after` once it has ended."""
    deadline = time.monotonic() + timeout
    with n8n.api() as c:
        while time.monotonic() < deadline:
            page = c.get("/executions", params={"workflowId": workflow_id, "includeData": "true"}).json()
            done = [
                e
                for e in page["data"]
                if int(e["id"]) > after
                and e.get("finished") is not None
                and e.get("status") not in ("running", "waiting", "new")
            ]
            if done:
                return dict(done[0])
            time.sleep(0.3)
    raise AssertionError(f"no ended execution of {workflow_id}; last page: {page}")


def last_execution_id(n8n: N8nServer, workflow_id: str) -> int:
    with n8n.api() as c:
        data = c.get("/executions", params={"workflowId": workflow_id}).json()["data"]
    return max((int(e["id"]) for e in data), default=0)


def node_output(execution: dict[str, Any], node: str) -> list[dict[str, Any]]:
    runs = execution["data"]["resultData"]["runData"].get(node) or []
    return [
        item["json"]
        for run in runs
        for out in (run.get("data") or {}).get("main") or []
        for item in out or []
    ]


def test_push_installs_the_shipped_workflows_once_and_active(n8n: N8nServer, pushed: dict[str, Any]) -> None:
    names = [
        "MLOps: deploy a pipeline and wait for its end",
        "MLOps: retrain when a metric drops",
        "MLOps: nightly batch prediction",
    ]
    with n8n.api() as c:
        all_names = [w["name"] for w in c.get("/workflows").json()["data"]]
    for name in names:
        assert all_names.count(name) == 1, all_names
        assert pushed[name]["active"] is True
    text = json.dumps(pushed)
    assert "Bearer" not in text  # the key lives in the credential only
    with n8n.api() as c:  # updated in place by the second push, not made twice
        creds = [x for x in c.get("/credentials").json()["data"] if x["name"] == "MLOps gateway"]
    assert len(creds) == 1 and creds[0]["type"] == "httpHeaderAuth"
    used = {
        n["credentials"]["httpHeaderAuth"]["id"]
        for w in pushed.values()
        for n in w["nodes"]
        if n.get("credentials")
    }
    assert used == {creds[0]["id"]}


def test_push_refuses_without_settings_with_located_problems(n8n: N8nServer, gateway: Server) -> None:
    env = {**os.environ, "MLOPS_HOME": str(gateway.home.parent / "x"), "N8N_API_URL": "", "N8N_API_KEY": ""}
    r = subprocess.run(
        [sys.executable, "-m", "mlops_nocode.cli.main", "n8n", "push", "--gateway-url", "ftp://x", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode != 0 and "Traceback" not in r.stderr
    where = {p["where"] for p in json.loads(r.stdout)["problems"]}
    assert {"N8N_API_URL", "N8N_API_KEY", "--gateway-url"} <= where


def test_a_trigger_deploys_waits_for_our_signed_end_and_notifies(
    n8n: N8nServer, gateway: Server, receiver: Receiver, pushed: dict[str, Any]
) -> None:
    wf = pushed[DEPLOY_WAIT]
    before = last_execution_id(n8n, wf["id"])
    spec = sleeper("n8nflow", [("a", 0.01), ("b", 0.01)])
    r = httpx.post(
        f"{n8n.url}/webhook/mlops-deploy",
        json={"pipeline": spec, "parameters": {}, "target": "local"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    execution = wait_execution(n8n, wf["id"], before)
    assert execution["status"] == "success", json.dumps(execution["data"]["resultData"].get("error"))[:3000]
    deployed = node_output(execution, "Deploy")[0]
    run_id = deployed["pipeline_id"]
    with gateway.client(gateway.admin_key) as c:  # n8n called our gateway, and the pipeline ran
        assert wait_status(c, run_id, 10) == "succeeded"
    verified = node_output(execution, "Verify signature")[0]  # our signed webhook reached n8n and passed
    assert verified["event"] == "run.succeeded" and verified["run"]["id"] == run_id
    assert node_output(execution, "Notify success") and not node_output(execution, "Notify failure")
    note = receiver.wait(lambda b: b.get("run") == run_id)
    assert note["status"] == "succeeded" and note["text"].startswith("Run succeeded")


def test_a_forged_notification_is_refused(
    n8n: N8nServer, gateway: Server, receiver: Receiver, pushed: dict[str, Any]
) -> None:
    """A resume URL called by someone else (no or a wrong signature) stops the execution: nothing is
    notified as succeeded."""
    wf = pushed[DEPLOY_WAIT]
    before = last_execution_id(n8n, wf["id"])
    with n8n.api() as c:  # ids are sequential in an instance; a waiting execution may not be listed yet
        next_id = 1 + max((int(e["id"]) for e in c.get("/executions").json()["data"]), default=0)
    slow = sleeper("n8nslow", [("a", 30)])
    httpx.post(f"{n8n.url}/webhook/mlops-deploy", json={"pipeline": slow, "target": "local"}, timeout=30)
    forged = {"event": "run.succeeded", "run": {"id": "x", "pipeline": "x", "status": "succeeded"}}
    deadline = time.monotonic() + 60
    with n8n.api() as c:
        while True:  # the execution's resume URL answers once its Wait node waits
            ids = [int(e["id"]) for e in c.get("/executions", params={"workflowId": wf["id"]}).json()["data"]]
            mine = min([i for i in ids if i > before] or [next_id])
            r = httpx.post(
                f"{n8n.url}/webhook-waiting/{mine}", json=forged, headers={"X-MLOPS-Signature": "sha256=00"}
            )
            if r.status_code == 200:
                break
            assert time.monotonic() < deadline, f"the execution never waited: {ids}"
            time.sleep(0.2)
    execution = wait_execution(n8n, wf["id"], before)
    assert execution["status"] == "error"
    assert "X-MLOPS-Signature does not match" in json.dumps(execution["data"]["resultData"]["error"])
    assert not any(b.get("run") == "x" for b in receiver.bodies)


ECHO_WORKFLOW = {
    "name": "mlops-tests: echo",
    "nodes": [
        {
            "id": "0b0c2d7e-7f7a-4f55-9d7e-1f1f7a1e0001",
            "name": "Hook",
            "type": "n8n-nodes-base.webhook",
            "typeVersion": 2,
            "position": [0, 0],
            "webhookId": "0b0c2d7e-7f7a-4f55-9d7e-1f1f7a1e0002",
            "parameters": {
                "httpMethod": "POST",
                "path": "mlops-echo",
                "responseMode": "lastNode",
                "options": {},
            },
        },
        {
            "id": "0b0c2d7e-7f7a-4f55-9d7e-1f1f7a1e0003",
            "name": "Answer",
            "type": "n8n-nodes-base.code",
            "typeVersion": 2,
            "position": [220, 0],
            "parameters": {
                "jsCode": "const b = $input.first().json.body;\n"
                "return [{ json: { doubled: b.parameters.n * 2, said: b.parameters.word, input: b.input } }];"
            },
        },
    ],
    "connections": {"Hook": {"main": [[{"node": "Answer", "type": "main", "index": 0}]]}},
    "settings": {"executionOrder": "v1"},
}


def test_a_pipeline_step_triggers_an_n8n_workflow_and_gets_its_result(
    n8n: N8nServer, gateway: Server
) -> None:
    with n8n.api() as c:
        made = c.post("/workflows", json=ECHO_WORKFLOW)
        assert made.status_code == 200, made.text
        assert c.post(f"/workflows/{made.json()['id']}/activate").status_code == 200
    hostile = "'; rm -rf / #{{ $env.HOME }}"
    spec = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Pipeline",
        "metadata": {"name": "calls-n8n", "version": "1.0.0"},
        "spec": {
            "steps": [
                {
                    "id": "ask",
                    "uses": "playbook/n8n-trigger",
                    "with": {
                        "webhook_url": f"{n8n.url}/webhook/mlops-echo",
                        "payload": {"n": 21, "word": hostile},
                    },
                }
            ],
            "outputs": {"answer": "ask.result"},
        },
    }
    with gateway.client(gateway.admin_key) as c:
        run = c.post("/pipelines/deploy", json={"pipeline": spec, "target": "local"}).json()
        assert wait_status(c, run["pipeline_id"], 120) == "succeeded", c.get(
            f"/api/v1/runs/{run['pipeline_id']}"
        ).text
        outputs = c.get(f"/api/v1/runs/{run['pipeline_id']}").json()["outputs"]
    answer = json.dumps(outputs)
    assert '"doubled": 42' in answer and json.dumps(hostile)[1:-1] in answer, answer


def test_the_canvas_shows_our_workflow(n8n: N8nServer, pushed: dict[str, Any], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from tests.web.conftest import CHROMIUM, FLAGS

    assert Path(CHROMIUM).exists(), "the screenshot needs chromium: apt-get install chromium"
    folder = Path(os.environ.get("N8N_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 800})
            # logged in as the owner: n8n's own login call sets the session cookie of this context
            login = {"emailOrLdapLoginId": n8n.email, "password": n8n.password}
            assert page.request.post(f"{n8n.url}/rest/login", data=login).ok
            page.goto(f"{n8n.url}/workflow/{pushed[DEPLOY_WAIT]['id']}")
            page.get_by_text("Wait for the run's end").first.wait_for(timeout=60_000)
            page.get_by_text("Verify signature").first.wait_for()
            page.screenshot(path=str(folder / "n8n-deploy-and-wait.png"))
        finally:
            browser.close()
    assert (folder / "n8n-deploy-and-wait.png").stat().st_size > 10_000


def test_an_exported_pipeline_runs_in_n8n_step_by_step(
    n8n: N8nServer, gateway: Server, receiver: Receiver
) -> None:
    """`push --pipeline` installs the export of a shipped pipeline; triggered, its step nodes report each
    step of the run the gateway made, and the End node returns the run's outputs."""
    r = mlops(
        n8n, gateway, "push", "--pipeline", "pipeline/iris-classifier", "--notify-url", receiver.url, "--json"
    )
    assert r.returncode == 0, r.stdout + r.stderr
    with n8n.api() as c:
        wf = next(
            w for w in c.get("/workflows").json()["data"] if w["name"].startswith("MLOps: pipeline/iris")
        )
    assert wf["active"] is True
    before = last_execution_id(n8n, wf["id"])
    hook = httpx.post(f"{n8n.url}/webhook/mlops-run-iris-classifier", json={"target": "local"}, timeout=30)
    assert hook.status_code == 200, hook.text
    execution = wait_execution(n8n, wf["id"], before, timeout=240)
    assert execution["status"] == "success", json.dumps(execution["data"]["resultData"].get("error"))[:3000]
    step_nodes = [n["name"] for n in wf["nodes"] if n["name"].startswith("step ")]
    assert step_nodes
    for name in step_nodes:
        assert node_output(execution, name)[0]["status"] == "succeeded", name
    end = node_output(execution, "End")[0]
    assert end["status"] == "succeeded" and end["outputs"]


def test_a_metric_alert_retrains_its_pipeline(
    n8n: N8nServer, gateway: Server, receiver: Receiver, pushed: dict[str, Any]
) -> None:
    """Our signed `alert.firing` (MlopsModelMetricBelowMinimum, pipeline label) deploys that pipeline again
    and notifies its end; an alert signed with another secret is refused."""
    from mlops_nocode.runs.webhooks import sign

    wf = pushed["MLOps: retrain when a metric drops"]
    alert = {
        "id": "d1",
        "event": "alert.firing",
        "timestamp": time.time(),
        "alert": {
            "status": "firing",
            "labels": {"alertname": "MlopsModelMetricBelowMinimum", "pipeline": "iris-classifier"},
        },
    }
    raw = json.dumps(alert).encode()
    before = last_execution_id(n8n, wf["id"])
    bad = httpx.post(
        f"{n8n.url}/webhook/mlops-alert",
        content=raw,
        headers={"Content-Type": "application/json", "X-MLOPS-Signature": sign("wrong", raw)},
    )
    assert bad.status_code == 200
    refused = wait_execution(n8n, wf["id"], before)
    assert refused["status"] == "error" and "does not match" in json.dumps(
        refused["data"]["resultData"]["error"]
    )
    secret = "alert-secret-for-tests"  # MLOPS_ALERT_SECRET of the test's n8n
    r = httpx.post(
        f"{n8n.url}/webhook/mlops-alert",
        content=raw,
        headers={"Content-Type": "application/json", "X-MLOPS-Signature": sign(secret, raw)},
    )
    assert r.status_code == 200, r.text
    execution = wait_execution(n8n, wf["id"], int(refused["id"]), timeout=240)
    assert execution["status"] == "success", json.dumps(execution["data"]["resultData"].get("error"))[:3000]
    run_id = node_output(execution, "Deploy")[0]["pipeline_id"]
    note = receiver.wait(lambda b: b.get("run") == run_id)
    assert note["status"] == "succeeded"
