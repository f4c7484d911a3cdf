"""POST /api/v1/assist through a real gateway (`mlops up`, SQLite and PostgreSQL) with its model route
on the scripted backend (it stands in for a model): a conversation belongs to the key that started it,
saving is a separate confirmed call, bad input is a precise 4xx, a failing model a 502, never a 500."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from mlops_nocode.integrations.litellm.routes import ModelRoute, save_route
from tests.ai.support import PIPELINE, fenced
from tests.api.conftest import Server
from tests.fakellm import FakeLLM


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    backend = FakeLLM()
    yield backend
    backend.stop()


def key(admin: httpx.Client, name: str, scopes: list[str]) -> str:
    r = admin.post("/api/v1/keys", json={"name": name, "scopes": scopes})
    assert r.status_code == 201, r.text
    return str(r.json()["key"])


def test_assist_conversations_are_per_key_and_saving_is_explicit(
    server: Server, admin: httpx.Client, llm: FakeLLM
) -> None:
    llm.reset()
    r = admin.post("/api/v1/assist", json={"prompt": "a forest on iris"})
    assert r.status_code == 409 and "ASSISTANT_MODEL" in r.json()["detail"], r.text

    save_route(server.home, ModelRoute(name="assistant", model="openai/fake", api_base=llm.url))
    llm.script(chat=[fenced(PIPELINE.replace("load.dataset", "load.data")), fenced(PIPELINE)])
    r = admin.post("/api/v1/assist", json={"prompt": "train a random forest on iris", "kind": "pipeline"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["valid"] and body["repairs"] == 1 and body["problems"] == [] and body["diff"] == ""
    assert body["spec"]["metadata"]["name"] == "iris-forest" and "kind: Pipeline" in body["yaml"]
    conv = body["conversation"]
    assert admin.get("/api/v1/catalogue/pipeline/iris-forest").status_code != 200, "nothing saved yet"

    shown = admin.get(f"/api/v1/assist/{conv}")
    assert (
        shown.status_code == 200 and shown.json()["messages"][0]["content"] == "train a random forest on iris"
    )

    other = key(admin, "other-user", ["read", "write"])
    reader = key(admin, "reader", ["read"])
    with server.client(other) as c:
        assert c.get(f"/api/v1/assist/{conv}").status_code == 404
        assert c.post(f"/api/v1/assist/{conv}/save").status_code == 404
        cont = c.post("/api/v1/assist", json={"prompt": "now boosting", "conversation": conv})
        assert cont.status_code == 404, cont.text
    with server.client(reader) as c:
        assert c.post(f"/api/v1/assist/{conv}/save").status_code == 403
        assert c.post("/api/v1/assist", json={"prompt": "x"}).status_code == 403

    saved = admin.post(f"/api/v1/assist/{conv}/save", json={"message": "forest from the assistant"})
    assert saved.status_code == 201, saved.text
    assert saved.json()["saved"][0]["ref"] == "pipeline/iris-forest@1.0.0"
    assert admin.get("/api/v1/catalogue/pipeline/iris-forest").status_code == 200
    history = admin.get("/api/v1/catalogue/pipeline/iris-forest/history").json()
    assert history[0]["message"].startswith("forest from the assistant"), history


def test_bad_input_and_hostile_answers_are_4xx_or_refusals_never_500(
    server: Server, admin: httpx.Client, llm: FakeLLM
) -> None:
    llm.reset()
    save_route(server.home, ModelRoute(name="assistant", model="openai/fake", api_base=llm.url))
    for bad in (
        {"prompt": ""},
        {"prompt": "x", "kind": "container"},
        {"prompt": "x", "conversation": "../../etc/passwd"},
        {"prompt": "x" * 9000},
        {"prompt": "x", "extra": 1},
    ):
        r = admin.post("/api/v1/assist", json=bad)
        assert r.status_code == 422, (bad, r.text)
    assert admin.get("/api/v1/assist/0123456789abcdef").status_code == 404
    assert admin.get("/api/v1/assist/..%2F..%2Fx").status_code in (404, 422)
    r = admin.post("/api/v1/assist/0123456789abcdef/save")
    assert r.status_code == 404, r.text

    llm.script(chat=[{"content": "spec: [" + "x, " * 40_000}] * 4)
    r = admin.post("/api/v1/assist", json={"prompt": "anything"})
    assert r.status_code == 200, r.text
    assert r.json()["valid"] is False and "ASSISTANT_MAX_ANSWER_BYTES" in r.json()["problems"][0]["what"]
    save = admin.post(f"/api/v1/assist/{r.json()['conversation']}/save")
    assert save.status_code == 422 and "no valid spec" in save.text

    llm.script(chat=[{"status": 500, "error": "boom"}] * 3)
    r = admin.post("/api/v1/assist", json={"prompt": "anything"})
    assert r.status_code == 502 and "did not answer" in r.json()["detail"], r.text


def test_secret_values_never_come_back_from_the_assistant(
    server: Server, admin: httpx.Client, llm: FakeLLM
) -> None:
    llm.reset()
    save_route(server.home, ModelRoute(name="assistant", model="openai/fake", api_base=llm.url))
    secret = "tok-9f8e7d6c5b4a3210"
    assert admin.put("/api/v1/secrets/HF_TOKEN", json={"value": secret}).status_code in (200, 201)
    leaky = PIPELINE.replace("A random forest on iris", f"uses {secret}").replace("iris-forest", "leaky")
    llm.script(chat=[fenced(leaky)])
    r = admin.post("/api/v1/assist", json={"prompt": f"a forest; my token is {secret}"})
    assert r.status_code == 200 and r.json()["valid"], r.text
    assert secret not in r.text and r.json()["spec"]["metadata"]["description"] == "uses ***"
    conv = r.json()["conversation"]
    shown = admin.get(f"/api/v1/assist/{conv}")
    assert secret not in shown.text and "my token is ***" in shown.text
    saved = admin.post(f"/api/v1/assist/{conv}/save")
    assert saved.status_code == 201, saved.text
    text = admin.get("/api/v1/catalogue/pipeline/leaky").json()["text"]
    assert secret not in text and "description: uses ***" in text, text
    assert secret not in (server.home.parent / f"{server.home.name}-server.log").read_text()


def test_assist_is_rate_limited_per_key(server: Server, admin: httpx.Client, llm: FakeLLM) -> None:
    save_route(server.home, ModelRoute(name="assistant", model="openai/fake", api_base=llm.url))
    busy = key(admin, "busy", ["read", "write"])
    with server.client(busy) as c:
        codes = [
            c.post("/api/v1/assist", json={"prompt": "x", "conversation": "0123456789abcdef"}).status_code
            for _ in range(11)
        ]
    assert codes == [404] * 10 + [429], codes
    r = admin.post("/api/v1/assist", json={"prompt": "x", "conversation": "0123456789abcdef"})
    assert r.status_code == 404, "another key has its own budget"
