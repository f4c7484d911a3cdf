"""A deployment's run token reports events beside the other Runners' and ends only its deployment: it
can neither end nor give back the whole run, and another deployment's end is not its to record."""

from __future__ import annotations

from pathlib import Path

import httpx

from mlops_nocode.runs.db import Database
from mlops_nocode.runs.deployrecords import DeploymentRecords
from mlops_nocode.runs.runtoken import issue_run_token
from mlops_nocode.runs.service import RunService
from tests.api.conftest import Server, sleeper

EVENT = {"type": "log", "step": "a", "ts": 1795000000.0, "data": {"line": "x"}}


def test_a_deployment_token_ends_only_its_deployment(tmp_path: Path) -> None:
    server = Server(tmp_path / "home", WORKERS="0")
    server.start()
    try:
        with server.client(server.admin_key) as c:
            run_id = c.post("/api/v1/runs", json={"pipeline": sleeper("dep", [("a", 0.05)])}).json()["id"]
            db = Database(f"sqlite:///{server.home / 'mlops.db'}")
            try:
                assert RunService(db).claim("w:1") is not None
                DeploymentRecords(db).record(run_id, "gpu", "runpod", "running")
            finally:
                db.close()
            secret = (server.home / "secret_key").read_text().strip()

            def post(action: str, body: object, deployment: str | None) -> httpx.Response:
                token = issue_run_token(secret, run_id, "w:1", 1, 3600, deployment)
                url = f"{server.url}/api/v1/runs/{run_id}/{action}"
                return httpx.post(url, json=body, headers={"Authorization": f"Bearer {token}"})

            # two Runners report side by side, each numbering from 1: nothing is lost
            assert post("report", {"first_seq": 1, "events": [EVENT]}, "gpu").status_code == 200
            assert post("report", {"first_seq": 1, "events": [EVENT, EVENT]}, "cpu").status_code == 200
            assert len(c.get(f"/api/v1/runs/{run_id}/events").json()) == 3
            assert post("release", {}, "gpu").json() == {"recorded": False}
            assert post("finish", {"status": "failed"}, "cpu").json() == {"recorded": False}  # not recorded
            assert post("finish", {"status": "succeeded"}, "gpu").json() == {"recorded": True}
            assert c.get(f"/api/v1/runs/{run_id}").json()["status"] == "running"  # the run goes on
            deps = c.get(f"/api/v1/runs/{run_id}/deployments").json()
            assert [(d["name"], d["status"]) for d in deps] == [("gpu", "succeeded")]
            assert post("finish", {"status": "failed"}, "gpu").json() == {"recorded": False}  # once
    finally:
        server.stop()
