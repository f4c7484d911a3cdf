"""A terraform step through the live gateway: an inline playbook whose module is a git:: source (a
gateway's playbooks have no folder of their own), a secret stored through the API reaching terraform as
TF_VAR_, the infra output in the run's outputs, and the secret in no event."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import Server, wait_status
from tests.runtime.test_terraform import MODULE


@pytest.fixture(scope="module")
def tf_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("gw-tf") / "home", POLL_SECONDS="0.1", TERRAFORM_GIT_FILE_URLS="true")
    s.start()
    yield s
    s.stop()


def test_a_terraform_step_runs_through_the_gateway(tf_server: Server, tmp_path: Path) -> None:
    repo = tmp_path / "modules"
    (repo / "ws").mkdir(parents=True)
    (repo / "ws" / "main.tf").write_text(MODULE)
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "ws"], check=True)
    secret = "gw-" + uuid.uuid4().hex
    playbook = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Playbook",
        "metadata": {"name": "gw-tf", "version": "1.0.0"},
        "spec": {
            "runtime": "terraform",
            "terraform": {
                "module": f"git::file://{repo}//ws",
                "variables": {"name": "${{ params.name }}", "token": "${{ secrets.GW_TF_TOKEN }}"},
                "ephemeral": True,
            },
            "secrets": ["GW_TF_TOKEN"],
            "outputs": {"box": {"type": "infra"}, "secret_len": {"type": "json"}},
            "parameters": {"type": "object", "properties": {"name": {"type": "string"}}},
        },
    }
    pipeline = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Pipeline",
        "metadata": {"name": "gw-tf-pipe", "version": "1.0.0"},
        "spec": {
            "steps": [{"id": "infra", "uses": "playbook/gw-tf", "with": {"name": 'gw "q" ${x}'}}],
            "outputs": {"box": "infra.box", "secret_len": "infra.secret_len"},
        },
    }
    with tf_server.client(tf_server.admin_key) as admin:
        assert admin.put("/api/v1/secrets/GW_TF_TOKEN", json={"value": secret}).status_code in (200, 201)
        r = admin.post("/pipelines/deploy", json={"pipeline": [playbook, pipeline]})
        assert r.status_code == 202, r.text
        run_id = r.json()["pipeline_id"]
        assert wait_status(admin, run_id, 180) == "succeeded", admin.get(f"/pipelines/{run_id}/status").text
        run = admin.get(f"/api/v1/runs/{run_id}").json()
        assert run["outputs"]["box"]["name"] == 'gw "q" ${x}'
        assert run["outputs"]["secret_len"] == len(secret)
        events = admin.get(f"/api/v1/runs/{run_id}/events").json()
    lines = [e["data"].get("line", "") for e in events if e["type"] == "log"]
    assert any("Apply complete" in x for x in lines), lines
    state = json.loads(
        (tf_server.home / "runs" / run_id / "terraform" / "infra" / "terraform.tfstate").read_text()
    )
    assert state["resources"] == []  # ephemeral: destroyed when the run ended
    assert secret not in json.dumps(events) + json.dumps(run)
