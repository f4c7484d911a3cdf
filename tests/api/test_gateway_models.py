"""/api/v1/models through a real gateway (`mlops up`): routes read, added, replaced and removed (never a
secret value), located 422s for bad routes and hostile values, scopes, the proxy's state, and the proxy
keys (created once with their value, listed without it, revoked)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import Server


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("models") / "home")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def admin(gw: Server) -> Iterator[httpx.Client]:
    with gw.client(gw.admin_key) as c:
        yield c


def test_routes_round_trip_and_proxy_state(gw: Server, admin: httpx.Client) -> None:
    empty = admin.get("/api/v1/models").json()
    assert empty["routes"] == []
    assert empty["proxy"] == {"running": False, "ready": False, "url": None, "pid": None, "port": None,
                              "started": None}  # fmt: skip
    body = {"model": "openai/gpt-4o-mini", "api_key_secret": "OPENAI_API_KEY", "input_cost_per_token": 1e-7}
    created = admin.put("/api/v1/models/gpt", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "gpt" and created.json()["source"] == "config"
    local = {"model": "ollama/llama3", "api_base": "http://127.0.0.1:11434", "fallbacks": []}
    assert admin.put("/api/v1/models/meta/llama3", json=local).status_code == 201  # a name with a slash
    replaced = admin.put("/api/v1/models/gpt", json={**body, "fallbacks": ["meta/llama3"]})
    assert replaced.status_code == 200 and replaced.json()["fallbacks"] == ["meta/llama3"]
    listed = admin.get("/api/v1/models").json()
    assert [r["name"] for r in listed["routes"]] == ["gpt", "meta/llama3"]
    assert (Path(gw.home) / "llm" / "routes.yaml").exists()
    assert admin.delete("/api/v1/models/meta/llama3").status_code == 204
    assert admin.delete("/api/v1/models/meta/llama3").status_code == 404
    assert [r["name"] for r in admin.get("/api/v1/models").json()["routes"]] == ["gpt"]


@pytest.mark.parametrize(
    ("name", "body", "where"),
    [
        ("ok", {"model": "openai/x", "api_base": "javascript:alert(1)"}, "body.api_base"),
        ("ok", {"model": "openai/x", "api_base": "http://u:p@evil/v1"}, "body.api_base"),
        ("ok", {"model": "openai/x", "api_key_secret": "sk-real-key-value"}, "body.api_key_secret"),
        ("ok", {"model": "openai/x\r\nX-Injected: 1"}, "body.model"),
        ("ok", {"model": "openai/x", "kind": "video"}, "body.kind"),
        ("ok", {"model": "openai/x", "fallbacks": ["missing"]}, "body.fallbacks"),
        ("ok", {"model": "openai/x", "input_cost_per_token": -1}, "body.input_cost_per_token"),
        ("a..b", {"model": "openai/x"}, "body.name"),
    ],
)
def test_bad_routes_are_located_422_and_change_nothing(
    admin: httpx.Client, name: str, body: dict[str, object], where: str
) -> None:
    before = admin.get("/api/v1/models").json()["routes"]
    got = admin.put(f"/api/v1/models/{name}", json=body)
    assert got.status_code == 422, got.text
    assert where in got.text
    assert admin.get("/api/v1/models").json()["routes"] == before


def test_unknown_fields_and_scopes(gw: Server, admin: httpx.Client) -> None:
    assert admin.put("/api/v1/models/x", json={"model": "openai/x", "api_key": "sk-leak"}).status_code == 422
    reader = admin.post("/api/v1/keys", json={"name": "reader", "scopes": ["read"]}).json()["key"]
    with gw.client(reader) as r:
        assert r.get("/api/v1/models").status_code == 200
        assert r.put("/api/v1/models/x", json={"model": "openai/x"}).status_code == 403
        assert r.get("/api/v1/models/keys").status_code == 403
    with gw.client() as anonymous:
        assert anonymous.get("/api/v1/models").status_code == 401


def test_proxy_keys_through_the_api(admin: httpx.Client) -> None:
    made = admin.post("/api/v1/models/keys", json={"name": "app", "budget_usd": 1.5, "models": ["gpt"]})
    assert made.status_code == 201, made.text
    key = made.json()
    assert key["key"].startswith("sk-mlops-")
    listed = admin.get("/api/v1/models/keys").json()
    assert [k["id"] for k in listed] == [key["id"]] and key["key"] not in str(listed)
    bad = admin.post("/api/v1/models/keys", json={"name": "x;$(id)"})
    assert bad.status_code == 422 and "body.name" in bad.text
    assert admin.post(f"/api/v1/models/keys/{key['id']}/revoke").status_code == 204
    assert admin.post(f"/api/v1/models/keys/{key['id']}/revoke").status_code == 404
    assert admin.post("/api/v1/models/keys/../revoke").status_code in (404, 405)
