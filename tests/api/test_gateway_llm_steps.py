"""A litellm step run by the real gateway (`mlops up`): the built-in llm-judge playbook calls a route whose
key is stored through the secrets API, against a real scripted OpenAI-compatible backend on loopback (it
stands in for a model); the score and token metrics reach the run's events; the key never comes back."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from mlops_nocode.integrations.litellm.routes import ModelRoute, save_route
from tests.api.conftest import Server, wait_status
from tests.fakellm import FakeLLM

KEY = "sk-gateway-route-key-81b4aa07"


@pytest.fixture(scope="module")
def keyed() -> Iterator[FakeLLM]:
    backend = FakeLLM(api_key=KEY)
    yield backend
    backend.stop()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, keyed: FakeLLM) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("gw-llm") / "home", POLL_SECONDS="0.1")
    save_route(
        s.home, ModelRoute(name="judge", model="openai/fake", api_base=keyed.url, api_key_secret="JUDGE_KEY")
    )
    s.start()
    yield s
    s.stop()


PIPELINE = [
    {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Pipeline",
        "metadata": {"name": "gw-judge", "version": "1.0.0"},
        "spec": {
            "steps": [
                {"id": "say", "uses": "playbook/llm-chat", "with": {"model": "judge", "prompt": "Say hello"}},
                {
                    "id": "judge",
                    "uses": "playbook/llm-judge",
                    "with": {"model": "judge", "rubric": "Greets the reader."},
                    "inputs": {"answer": "say.answer"},
                },
            ],
            "outputs": {"verdict": "judge.verdict"},
        },
    }
]


def test_gateway_runs_litellm_steps_with_a_stored_route_key(gateway: Server, keyed: FakeLLM) -> None:
    keyed.script(chat=[{"content": f"Hello! ({KEY})"}, {"json": {"score": 1, "reasoning": "it greets"}}])
    with gateway.client(gateway.admin_key) as admin:
        assert admin.put("/api/v1/secrets/JUDGE_KEY", json={"value": KEY}).status_code == 201
        run = admin.post("/api/v1/runs", json={"pipeline": PIPELINE})
        assert run.status_code in (200, 201, 202), run.text
        run_id = run.json()["id"]
        assert wait_status(admin, run_id, timeout=120) == "succeeded", admin.get(
            f"/api/v1/runs/{run_id}"
        ).text
        detail = admin.get(f"/api/v1/runs/{run_id}")
        assert detail.json()["outputs"]["verdict"] == {"score": 1, "reasoning": "it greets"}
        events = admin.get(f"/api/v1/runs/{run_id}/events")
        finished = [e for e in events.json() if e["type"] == "step.finished" and e["step"] == "judge"]
        assert finished and finished[0]["data"]["metrics"]["metrics"]["score"] == 1
        assert any(e["type"] == "metric" and e["data"]["name"] == "total_tokens" for e in events.json())
        for body in (detail.text, events.text):
            assert KEY not in body
    assert keyed.requests()[-1]["authorization"]
    for path in (gateway.home / "runs" / run_id).rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    assert KEY not in gateway.log.read_text()


def test_gateway_refuses_a_launch_naming_a_route_it_does_not_have(gateway: Server) -> None:
    ghost = json.loads(
        json.dumps(PIPELINE).replace('"model": "judge", "rubric"', '"model": "ghost", "rubric"')
    )
    with gateway.client(gateway.admin_key) as admin:
        before = admin.get("/api/v1/runs").json()
        r = admin.post("/api/v1/runs", json={"pipeline": ghost})
        assert r.status_code == 422, r.text
        [problem] = r.json()["problems"]
        assert problem["where"].endswith("(judge) > with.model"), problem
        assert "model route 'ghost', which is not configured (configured: judge)" in problem["what"]
        assert admin.get("/api/v1/runs").json() == before  # nothing was queued
