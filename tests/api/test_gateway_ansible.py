"""An ansible step run by a real gateway (`mlops up`, SQLite): the built-in playbook/ansible-configure from
the gateway's catalogue, with an inventory from an infra output, and its recap in the run's events."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.api.conftest import Server, wait_status


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    s = Server(tmp_path_factory.mktemp("gw-ansible") / "home", POLL_SECONDS="0.1")
    s.start()
    try:
        with s.client(s.admin_key) as c:
            yield c
    finally:
        s.stop()


HOSTS = """
def hosts():
    return {"hosts": {"hosts": [{"name": "node-1", "connection": "local", "groups": ["trainers"]},
                                {"name": "node-2", "connection": "local", "vars": {"zone": "b"}}]}}
"""


def test_the_gateway_runs_an_ansible_step_on_an_infra_inventory(gateway: httpx.Client) -> None:
    docs = [
        {
            "apiVersion": "mlops-nocode/v1",
            "kind": "Playbook",
            "metadata": {"name": "fake-infra", "version": "1.0.0"},
            "spec": {
                "runtime": "python",
                "python": {"code": HOSTS, "entrypoint": "hosts"},
                "outputs": {"hosts": {"type": "infra"}},
            },
        },
        {
            "apiVersion": "mlops-nocode/v1",
            "kind": "Pipeline",
            "metadata": {"name": "infra-then-configure", "version": "1.0.0"},
            "spec": {
                "steps": [
                    {"id": "infra", "uses": "playbook/fake-infra"},
                    {
                        "id": "conf",
                        "uses": "playbook/ansible-configure",
                        "with": {"service": "api"},
                        "inputs": {"hosts": "infra.hosts"},
                    },
                ],
                "outputs": {"summary": "conf.summary", "recap": "conf.recap"},
            },
        },
    ]
    r = gateway.post("/api/v1/runs", json={"pipeline": docs})
    assert r.status_code in (200, 201, 202), r.text
    run_id = r.json()["id"]
    assert wait_status(gateway, run_id, 180) == "succeeded", gateway.get(f"/api/v1/runs/{run_id}").text
    run = gateway.get(f"/api/v1/runs/{run_id}").json()
    assert run["outputs"]["summary"] == {"service": "api", "hosts": ["node-1", "node-2"]}
    assert run["outputs"]["recap"]["hosts"] == 2 and run["outputs"]["recap"]["failed"] == 0
    events = gateway.get(f"/api/v1/runs/{run_id}/events").json()
    metrics = {e["data"]["name"]: e["data"]["value"] for e in events if e["type"] == "metric"}
    assert metrics.get("ansible_changed") == 3, metrics
    lines = [str(e["data"].get("line")) for e in events if e["type"] == "log" and e["step"] == "conf"]
    assert any("PLAY RECAP" in line for line in lines)
