"""An http step run by the real gateway (`mlops up`): the built-in http-notify playbook calls a real
server on loopback with a token stored through the secrets API; the token never comes back in the run,
its events, its logs or its files, and a refused address fails the run with the reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Server, wait_status
from tests.runtime.http_server import Answer, serve
from tests.runtime.http_server import Server as Hooks

TOKEN = "gw-http-token-51d0c3e9"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("gw-http") / "home", POLL_SECONDS="0.1")
    s.start()
    yield s
    s.stop()


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    yield from serve()


def _pipeline(name: str, url: str) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "mlops-nocode/v1",
            "kind": "Pipeline",
            "metadata": {"name": name, "version": "1.0.0"},
            "spec": {
                "steps": [
                    {
                        "id": "notify",
                        "uses": "playbook/http-notify",
                        "with": {
                            "url": url,
                            "text": "deployed",
                            "authorization": "Bearer ${{ secrets.GW_HOOK_TOKEN }}",
                        },
                    }
                ],
                "outputs": {"answer": "notify.answer"},
            },
        }
    ]


def test_gateway_runs_an_http_step_with_a_stored_secret(gateway: Server, hooks: Hooks) -> None:
    hooks.on("/deployed", Answer(200, b'{"received": true}', {"Content-Type": "application/json"}))
    with gateway.client(gateway.admin_key) as admin:
        assert admin.put("/api/v1/secrets/GW_HOOK_TOKEN", json={"value": TOKEN}).status_code == 201
        run = admin.post("/api/v1/runs", json={"pipeline": _pipeline("gw-notify", f"{hooks.url}/deployed")})
        assert run.status_code in (200, 201, 202), run.text
        run_id = run.json()["id"]
        assert wait_status(admin, run_id) == "succeeded", admin.get(f"/api/v1/runs/{run_id}").text
        detail = admin.get(f"/api/v1/runs/{run_id}")
        assert detail.json()["outputs"]["answer"] == {"received": True}
        events = admin.get(f"/api/v1/runs/{run_id}/events")
        assert any("POST" in json.dumps(e["data"]) for e in events.json() if e["type"] == "log")
        for body in (detail.text, events.text):
            assert TOKEN not in body
    assert hooks.seen[-1].headers["Authorization"] == f"Bearer {TOKEN}"
    assert json.loads(hooks.seen[-1].body)["text"] == "deployed"
    _no_token_in(gateway.home / "runs" / run_id)
    assert TOKEN not in gateway.log.read_text()


def test_gateway_run_to_a_metadata_address_fails_with_the_reason(gateway: Server) -> None:
    with gateway.client(gateway.admin_key) as admin:
        admin.put("/api/v1/secrets/GW_HOOK_TOKEN", json={"value": TOKEN})
        url = "http://169.254.169.254/latest/meta-data"
        run_id = admin.post("/api/v1/runs", json={"pipeline": _pipeline("gw-meta", url)}).json()["id"]
        assert wait_status(admin, run_id) == "failed"
        status = admin.get(f"/pipelines/{run_id}/status").json()
        assert "169.254.169.254 is link-local" in json.dumps(status), status


def _no_token_in(root: Path) -> None:
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert TOKEN.encode() not in path.read_bytes(), path
