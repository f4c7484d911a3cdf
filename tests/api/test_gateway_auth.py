"""Authentication on every route of the live gateway (enumerated from its OpenAPI schema)."""

from __future__ import annotations

import re
import time

import httpx
import jwt

from tests.api.conftest import Server

PUBLIC = {("GET", "/health")}


def _routes(client: httpx.Client) -> list[tuple[str, str]]:
    schema = client.get("/openapi.json").json()
    return [(m.upper(), p) for p, ops in schema["paths"].items() for m in ops]


def test_the_documented_public_routes_need_no_credential(server: Server) -> None:
    with server.client() as anon:
        for path in ("/", "/docs", "/redoc", "/openapi.json"):
            assert anon.get(path).status_code == 200, path
        assert anon.get("/logout").status_code == 303
        assert anon.post("/logout").status_code == 303
        assert anon.get("/metrics").status_code == 401
    with server.client(server.admin_key) as admin:  # reads are GET only, as documented
        for path in ("/health", "/api/v1/runs", "/api/v1/auth/whoami", "/metrics"):
            assert admin.head(path).status_code == 405, path
            assert admin.options(path).status_code == 405, path


def test_health_needs_no_credential(server: Server) -> None:
    r = httpx.get(f"{server.url}/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok" and "timestamp" in r.json()
    page = httpx.get(f"{server.url}/")
    assert page.status_code == 200 and ('href="/docs"' in page.text or '<div id="root">' in page.text)


def test_every_route_refuses_requests_without_credentials(server: Server, admin: httpx.Client) -> None:
    routes = _routes(admin)
    assert len(routes) >= 20
    assert ("GET", "/metrics") in routes
    assert ("POST", "/pipelines/deploy") in routes
    with server.client() as anon:
        for method, path in routes:
            if (method, path) in PUBLIC:
                continue
            url = re.sub(r"\{[^}]+\}", "x", path)
            r = anon.request(method, url)
            assert r.status_code == 401, (method, path, r.status_code, r.text)
            assert r.headers["www-authenticate"] == "Bearer"
            r = anon.request(method, url, headers={"Authorization": "Bearer mlk_nope_nope"})
            assert r.status_code == 401, (method, path)


def test_read_key_cannot_write_and_tokens_carry_scopes(server: Server, admin: httpx.Client) -> None:
    created = admin.post("/api/v1/keys", json={"name": "reader", "scopes": ["read"]})
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    assert key.startswith("mlk_") and key not in admin.get("/api/v1/keys").text
    with server.client(key) as reader:
        assert reader.get("/api/v1/runs").status_code == 200
        assert reader.get("/metrics").status_code == 200
        r = reader.post("/pipelines/deploy", json={"pipeline": "pipeline/iris-classifier"})
        assert r.status_code == 403 and "write" in r.json()["detail"]
        assert reader.get("/api/v1/keys").status_code == 403
        tok = reader.post("/api/v1/auth/token", json={"ttl_seconds": 60})
        assert tok.status_code == 200, tok.text
        assert tok.json()["scopes"] == ["read"]
        token = tok.json()["access_token"]
    with server.client(token) as via_token:
        assert via_token.get("/api/v1/runs").status_code == 200
        assert via_token.post("/api/v1/runs/x/cancel").status_code == 403
    # an admin token narrowed to read
    narrowed = admin.post("/api/v1/auth/token", json={"scopes": ["read"]}).json()
    assert narrowed["scopes"] == ["read"]
    with server.client(narrowed["access_token"]) as c:
        assert c.post("/api/v1/validate", json={"pipeline": "pipeline/iris-classifier"}).status_code == 403
    # revoking the key kills its tokens too
    key_id = created.json()["id"]
    assert admin.delete(f"/api/v1/keys/{key_id}").status_code == 200
    with server.client(key) as revoked, server.client(token) as revoked_token:
        assert revoked.get("/api/v1/runs").status_code == 401
        assert revoked_token.get("/api/v1/runs").status_code == 401
    with server.client("not.a.token") as bad:
        assert bad.get("/api/v1/runs").status_code == 401


def test_secret_key_generated_private(server: Server) -> None:
    path = server.home / "secret_key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(path.read_text().strip()) >= 32
    assert (server.home / "credentials.json").stat().st_mode & 0o777 == 0o600


def test_a_token_asked_for_with_a_token_never_outlives_it(server: Server, admin: httpx.Client) -> None:
    parent = admin.post("/api/v1/auth/token", json={"ttl_seconds": 30})
    assert parent.status_code == 200, parent.text
    parent_exp = parent.json()["expires_at"]
    token = parent.json()["access_token"]
    for _ in range(3):  # a chain of tokens, each asking for the full TTL, stays within the first one's life
        with server.client(token) as via_token:
            child = via_token.post("/api/v1/auth/token", json={})
        assert child.status_code == 200, child.text
        claims = jwt.decode(child.json()["access_token"], options={"verify_signature": False})
        assert child.json()["expires_at"] == claims["exp"] <= parent_exp, (child.json(), parent_exp)
        token = child.json()["access_token"]
    # an API key still gets the full TTL asked for
    fresh = admin.post("/api/v1/auth/token", json={"ttl_seconds": 3600}).json()
    assert fresh["expires_at"] >= time.time() + 3590


def test_a_scope_the_credential_lacks_is_refused_not_dropped(server: Server, admin: httpx.Client) -> None:
    reader = admin.post("/api/v1/keys", json={"name": "token-reader", "scopes": ["read"]}).json()["key"]
    with server.client(reader) as c:
        r = c.post("/api/v1/auth/token", json={"scopes": ["admin"]})
        assert r.status_code == 403, r.text
        assert "lacks the admin scope" in r.json()["detail"] and "read" in r.json()["detail"]
        both = c.post("/api/v1/auth/token", json={"scopes": ["read", "write"]})
        assert both.status_code == 403 and "lacks the write scope" in both.json()["detail"], both.text
        assert c.post("/api/v1/auth/token", json={"scopes": ["read"]}).json()["scopes"] == ["read"]
    narrowed = admin.post("/api/v1/auth/token", json={"scopes": ["write"]}).json()
    assert narrowed["scopes"] == ["read", "write"]
    with server.client(narrowed["access_token"]) as c:
        again = c.post("/api/v1/auth/token", json={"scopes": ["admin"]})
        assert again.status_code == 403 and "lacks the admin scope" in again.json()["detail"], again.text


def test_a_ttl_above_the_maximum_is_refused_with_its_location(admin: httpx.Client) -> None:
    r = admin.post("/api/v1/auth/token", json={"ttl_seconds": 3601})  # TOKEN_TTL_SECONDS is 3600
    assert r.status_code == 422, r.text
    [error] = r.json()["detail"]
    assert error["loc"] == ["body", "ttl_seconds"] and "maximum 3600" in error["msg"], error
    assert admin.post("/api/v1/auth/token", json={"ttl_seconds": 3600}).status_code == 200
