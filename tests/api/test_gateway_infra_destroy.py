"""POST /api/v1/runs/{id}/infra/destroy: what a run's terraform steps kept (not ephemeral) is destroyed by
the gateway with the secrets of its store; a missing secret is a located failure, not a 500."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Server, wait_status

MAIN_TF = """
variable "name" { type = string }
variable "token" {
  type      = string
  sensitive = true
}
resource "terraform_data" "box" {
  input = var.name
  triggers_replace = [sha256(var.token)]
}
output "box" { value = { id = terraform_data.box.id } }
"""


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("gw-infra") / "home", POLL_SECONDS="0.1")
    s.start()
    yield s
    s.stop()


def docs(name: str) -> list[dict[str, Any]]:
    playbook = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Playbook",
        "metadata": {"name": f"{name}-tf", "version": "1.0.0"},
        "spec": {
            "runtime": "terraform",
            "terraform": {
                "files": {"main.tf": MAIN_TF},
                "variables": {"name": "kept", "token": "${{ secrets.INFRA_TOKEN }}"},
            },
            "outputs": {"box": {"type": "infra"}},
        },
    }
    pipeline = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Pipeline",
        "metadata": {"name": name, "version": "1.0.0"},
        "spec": {"steps": [{"id": "infra", "uses": f"playbook/{name}-tf"}], "outputs": {"box": "infra.box"}},
    }
    return [playbook, pipeline]


def resources(home: Path, run_id: str) -> list[Any]:
    state = json.loads((home / "runs" / run_id / "terraform" / "infra" / "terraform.tfstate").read_text())
    return list(state.get("resources", []))


def test_kept_infrastructure_is_destroyed_on_demand(gw: Server) -> None:
    token = "infra-" + uuid.uuid4().hex
    with gw.client(gw.admin_key) as admin:
        assert admin.put("/api/v1/secrets/INFRA_TOKEN", json={"value": token}).status_code == 201
        run_id = admin.post("/api/v1/runs", json={"pipeline": docs("kept")}).json()["id"]
        assert wait_status(admin, run_id, timeout=120) == "succeeded"
        assert resources(gw.home, run_id), "not ephemeral: the infrastructure outlives the run"
        [held] = admin.get(f"/api/v1/runs/{run_id}/infra").json()
        assert held["step"] == "infra" and held["resources"] == ["terraform_data.box"]
        r = admin.post(f"/api/v1/runs/{run_id}/infra/destroy")
        assert r.status_code == 200, r.text
        [entry] = r.json()
        assert entry["status"] == "destroyed", entry
        assert resources(gw.home, run_id) == []
        assert admin.get(f"/api/v1/runs/{run_id}/infra").json()[0]["resources"] == []
        assert token not in r.text
        again = admin.post(f"/api/v1/runs/{run_id}/infra/destroy")  # safe to repeat
        assert [e["status"] for e in again.json()] == ["destroyed"]
        assert admin.post("/api/v1/runs/no-such-run/infra/destroy").status_code == 404
        assert admin.get("/api/v1/runs/no-such-run/infra").status_code == 404


def test_a_missing_secret_is_a_located_failure(gw: Server) -> None:
    with gw.client(gw.admin_key) as admin:
        admin.put("/api/v1/secrets/INFRA_TOKEN", json={"value": "infra-" + uuid.uuid4().hex})
        run_id = admin.post("/api/v1/runs", json={"pipeline": docs("lost")}).json()["id"]
        assert wait_status(admin, run_id, timeout=120) == "succeeded"
        assert admin.delete("/api/v1/secrets/INFRA_TOKEN").status_code in (200, 204)
        r = admin.post(f"/api/v1/runs/{run_id}/infra/destroy")
        assert r.status_code == 200, r.text
        [entry] = r.json()
        assert entry["status"] == "failed"
        assert "INFRA_TOKEN" in entry["problem"]["what"]
        assert "PUT /api/v1/secrets/INFRA_TOKEN" in entry["problem"]["fix"]
        assert resources(gw.home, run_id), "nothing was destroyed without the secret"
