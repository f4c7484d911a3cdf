"""Services through the gateway (`mlops up`): GET /api/v1/services lists a kept service with its health;
the gateway's supervisor restarts it when its process dies (with the secret it needs, from the vault);
DELETE /api/v1/services/{name} stops it with nothing left; bad names and unknown ones are refused."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import compile_plan
from mlops_nocode.runtime import services as sv
from mlops_nocode.runtime.runner import Runner
from mlops_nocode.spec import load_text
from tests.api.conftest import Server, wait_status
from tests.conftest import none_left

TOKEN = "vault-token-for-restart-31"
SPEC = """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: svc, version: 1.0.0}
spec:
  runtime: serve
  serve:
    app: serveapps:echo
    name: kept-api
    keep: true
    env: {SERVE_TOKEN: "${{ secrets.SERVE_TOKEN }}"}
  secrets: [SERVE_TOKEN]
  outputs: {endpoint: {type: endpoint}}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: t, version: 1.0.0}
spec:
  steps:
    - {id: web, uses: playbook/svc}
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(
        tmp_path_factory.mktemp("gw") / "home",
        SERVE_CHECK_INTERVAL="0.2",
        SERVE_RESTART_BACKOFF="0.1",
        SERVE_STOP_GRACE="2",
        POLL_SECONDS="0.1",
    )
    s.start()
    yield s
    s.stop()


def wait_for(what: str, check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.1)


def test_kept_service_is_listed_restarted_and_stopped(gateway: Server) -> None:
    with gateway.client(gateway.admin_key) as api:
        assert api.put("/api/v1/secrets/SERVE_TOKEN", json={"value": TOKEN}).status_code == 201
        plan = compile_plan("pipeline/t", Index(load_text(SPEC)))
        r = Runner(plan, home=gateway.home, environ={"SERVE_TOKEN": TOKEN}).run()
        assert r.status == "succeeded", r.summary()

        def listed() -> dict[str, Any] | None:
            found = [s for s in api.get("/api/v1/services").json() if s["name"] == "kept-api"]
            return found[0] if found and found[0]["state"] == "healthy" else None

        first = wait_for("a healthy listing", listed)
        assert first["keep"] is True and first["url"].startswith("http://127.0.0.1:")
        assert TOKEN not in api.get("/api/v1/services").text
        os.killpg(first["pid"], signal.SIGKILL)  # the service dies: the gateway starts it again

        def restarted() -> dict[str, Any] | None:
            s = listed()
            return s if s and s["pid"] != first["pid"] and s["restarts"] >= 1 else None

        again = wait_for("a restart", restarted)
        assert again["url"] == first["url"]  # same port, same endpoint
        info = httpx.get(again["url"] + "/info", timeout=10).json()
        assert info["token_ok"] is True  # the secret came from the vault
        bad = api.delete("/api/v1/services/..%2Fetc")
        assert bad.status_code in (404, 422)
        assert api.delete("/api/v1/services/Not_A_Name").status_code == 422
        missing = api.delete("/api/v1/services/no-such")
        assert missing.status_code == 404 and "kept-api" in missing.text
        gone = api.delete("/api/v1/services/kept-api")
        assert gone.status_code == 200 and gone.json()["state"] == "stopped"
        assert none_left("--service kept-api")
        assert api.get("/api/v1/services").json() == []
        assert sv.load(gateway.home, "kept-api") is None


def test_services_need_credentials(gateway: Server) -> None:
    with gateway.client() as anonymous:
        assert anonymous.get("/api/v1/services").status_code == 401
        assert anonymous.delete("/api/v1/services/kept-api").status_code == 401


def test_home_is_the_gateways(gateway: Server, home: Path) -> None:
    assert gateway.home != home  # the test's own MLOPS_HOME stays untouched
    assert not (home / "serving").exists()


def test_a_run_through_the_gateway_serves_a_trained_model(gateway: Server) -> None:
    steps = [
        {"id": "load", "uses": "playbook/sklearn-dataset", "with": {"name": "iris"}},
        {"id": "train", "uses": "playbook/sklearn-train", "inputs": {"dataset": "load.dataset"}},
        {
            "id": "serve",
            "uses": "playbook/serve-model",
            "with": {"name": "gw-iris", "keep": True},
            "inputs": {"model": "train.model"},
        },
    ]
    pipeline = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Pipeline",
        "metadata": {"name": "gw-iris", "version": "1.0.0"},
        "spec": {"steps": steps, "outputs": {"endpoint": "serve.endpoint"}},
    }
    with gateway.client(gateway.admin_key) as api:
        run = api.post("/api/v1/runs", json={"pipeline": [pipeline]})
        assert run.status_code in (200, 201, 202), run.text
        run_id = run.json()["id"]
        assert wait_status(api, run_id, timeout=120) == "succeeded", api.get(f"/api/v1/runs/{run_id}").text
        endpoint = api.get(f"/api/v1/runs/{run_id}").json()["outputs"]["endpoint"]
        assert endpoint["service"] == "gw-iris"
        listed = {s["name"]: s for s in api.get("/api/v1/services").json()}
        assert listed["gw-iris"]["url"] == endpoint["url"] and listed["gw-iris"]["run"] == run_id
        answer = httpx.post(endpoint["url"] + "/predict", json={"rows": [[5.1, 3.5, 1.4, 0.2]]}, timeout=30)
        assert answer.status_code == 200 and len(answer.json()["predictions"]) == 1
        assert api.delete("/api/v1/services/gw-iris").status_code == 200
    assert none_left("--service gw-iris")
