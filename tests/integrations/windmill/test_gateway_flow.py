"""The shipped Windmill scripts and flows run against the real gateway (`mlops up` on loopback), executed
by a stand-in of Windmill's flow executor (flowrunner.py: JavaScript transforms evaluated by Node)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mlops_nocode.catalogue import load_folder
from mlops_nocode.catalogue.service import configured_catalogue
from mlops_nocode.integrations.windmill.assets import deployment_flow
from mlops_nocode.integrations.windmill.export import export_flow
from mlops_nocode.spec import Pipeline
from tests.api.conftest import Server
from tests.integrations.windmill.flowrunner import FlowRunner, install_scripts

ROOT = Path(__file__).resolve().parents[3]
SALES = ROOT / "catalogue" / "pipelines" / "sales-forecast.yaml"


class Receiver:
    """A webhook receiver on loopback recording the JSON bodies posted to it."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("wm-gw") / "home")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def runner(gateway: Server, tmp_path_factory: pytest.TempPathFactory) -> FlowRunner:
    install_scripts(ROOT / "orchestrator" / "windmill" / "scripts", tmp_path_factory.mktemp("wm-worker"))
    return FlowRunner({"f/mlops/gateway_url": gateway.url, "f/mlops/gateway_key": gateway.admin_key})


def test_deployment_flow_validates_plans_deploys_waits_and_notifies(runner: FlowRunner) -> None:
    receiver = Receiver()
    flow_input = {
        "pipeline": "pipeline/sales-forecast",
        "parameters": {"n_estimators": 5},
        "target": "local",
        "keep": False,
        "notify_url": receiver.url,
    }
    results = runner.run(deployment_flow(), flow_input)
    assert results["validate"]["status"] == "valid"
    assert results["plan"]["steps"] == ["sales", "features", "split", "train", "evaluate"]
    assert results["wait"]["status"] == "succeeded" and results["result"] == "succeeded"
    assert results["wait"]["pipeline_id"] == results["deploy"]["pipeline_id"]
    run_id = results["deploy"]["pipeline_id"]
    assert receiver.bodies == [
        {
            "text": f"MLOps pipeline pipeline/sales-forecast: run {run_id} succeeded",
            "pipeline": "pipeline/sales-forecast",
            "run_id": run_id,
            "status": "succeeded",
            "details": "",
        }
    ]
    receiver.server.shutdown()


def test_deployment_flow_stops_at_validate_with_located_problems(runner: FlowRunner) -> None:
    flow_input = {
        "pipeline": "pipeline/sales-forecast",
        "parameters": {"n_estimators": "lots"},
        "target": "local",
        "keep": False,
        "notify_url": "",
    }
    with pytest.raises(Exception, match="n_estimators") as e:
        runner.run(deployment_flow(), flow_input)
    assert type(e.value).__name__ == "GatewayError" and "HTTP 422" in str(e.value)
    assert [c for c, _ in runner.calls][-1] == "validate"


def test_exported_gateway_flow_follows_each_step_of_the_run(runner: FlowRunner) -> None:
    """iris-classifier nests a pipeline: its module `step_classify` follows every `classify/...` step."""
    docs = load_folder([ROOT / "catalogue"])
    root = next(d for d in docs if isinstance(d, Pipeline) and d.metadata.name == "iris-classifier")
    flow = export_flow(root, configured_catalogue(docs), "gateway")
    results = runner.run(flow, {"n_estimators": 5})
    assert results["step_load"]["steps"]["load"]["status"] == "succeeded"
    assert set(results["step_classify"]["steps"]) == {"classify/split", "classify/train", "classify/evaluate"}
    assert {s["status"] for s in results["step_classify"]["steps"].values()} == {"succeeded"}
    assert results["step_export"]["steps"]["export"]["status"] == "succeeded"
    assert results["mlops_wait"]["status"] == "succeeded"
    assert set(results["mlops_wait"]["outputs"]) >= {"model", "metrics", "bundle"}


def test_exported_scripts_flow_runs_the_steps_code(tmp_path: Path) -> None:
    """Scripts mode needs no gateway: each step's code runs as its Windmill Python script would."""
    docs = load_folder([SALES])
    root = docs[-1]
    assert isinstance(root, Pipeline)
    flow = export_flow(root, configured_catalogue(docs), "scripts")
    results = FlowRunner({}).run(flow, {"n_estimators": 5, "n_days": 120})
    outputs = results["mlops_outputs"]
    assert Path(outputs["model"]).exists() and "r2" in json.dumps(outputs["metrics"])
