"""The browser login session on a live gateway: the login URL sets an HttpOnly, SameSite=Strict cookie and
redirects; the cookie authenticates GET (EventSource can read run logs) but never writes."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

import httpx
import jwt

from tests.api.conftest import Server, sleeper

COOKIE = "mlops_session"


def _login(server: Server, credential: str, **headers: str) -> httpx.Response:
    return httpx.get(
        f"{server.url}/", params={"token": credential}, headers=headers, follow_redirects=False, timeout=30
    )


def _cookie(r: httpx.Response) -> str:
    header = r.headers["set-cookie"]
    name, _, rest = header.partition("=")
    assert name == COOKIE, header
    return rest.split(";", 1)[0]


def _as_browser(server: Server, cookie: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Cookie": f"{COOKIE}={cookie}"}, timeout=30)


def test_login_url_sets_a_strict_httponly_cookie_and_drops_the_token(server: Server) -> None:
    r = _login(server, server.admin_key)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/"
    assert r.headers["cache-control"] == "no-store"
    attrs = [a.strip().lower() for a in r.headers["set-cookie"].split(";")]
    assert "httponly" in attrs and "samesite=strict" in attrs and "path=/" in attrs
    assert "secure" not in attrs  # plain http here
    assert any(a.startswith("max-age=") and 0 < int(a.split("=")[1]) <= 3600 for a in attrs)
    cookie = _cookie(r)
    assert server.admin_key not in cookie and cookie.count(".") == 2  # a signed token, not the key
    with _as_browser(server, cookie) as browser:
        me = browser.get("/api/v1/auth/whoami")
        assert me.status_code == 200, me.text
        assert me.json()["via"] == "session" and "admin" in me.json()["scopes"]
        page = browser.get("/")
        assert page.status_code == 200 and "Signed in" in page.text and server.admin_key not in page.text


def _attrs(r: httpx.Response) -> dict[str, str]:
    parts = [a.strip() for a in r.headers["set-cookie"].split(";")][1:]
    return {k.lower(): v for k, _, v in (a.partition("=") for a in parts)}


def test_the_cookie_expires_when_its_max_age_says(server: Server) -> None:
    before = time.time()
    r = _login(server, server.admin_key)
    attrs = _attrs(r)
    max_age = int(attrs["max-age"])
    assert 3590 <= max_age <= 3600, attrs
    expires = parsedate_to_datetime(attrs["expires"]).timestamp()  # an HTTP date, not a year-2083 one
    assert before + max_age - 5 <= expires <= time.time() + max_age + 5, attrs
    session = jwt.decode(_cookie(r), options={"verify_signature": False})
    assert abs(session["exp"] - expires) <= 5  # the cookie goes when its token does


def test_a_session_from_a_token_does_not_outlive_it(server: Server, admin: httpx.Client) -> None:
    token = admin.post("/api/v1/auth/token", json={"ttl_seconds": 60, "scopes": ["read"]}).json()
    r = _login(server, token["access_token"])
    assert r.status_code == 303, r.text
    max_age = next(a for a in r.headers["set-cookie"].split(";") if a.strip().lower().startswith("max-age="))
    assert 0 < int(max_age.split("=")[1]) <= 60
    session = jwt.decode(_cookie(r), options={"verify_signature": False})
    assert session["exp"] <= token["expires_at"] + 1 and session["scopes"] == ["read"]


def test_https_login_marks_the_cookie_secure(server: Server) -> None:
    r = _login(server, server.admin_key, **{"X-Forwarded-Proto": "https"})  # from a trusted local proxy
    assert r.status_code == 303
    assert "secure" in [a.strip().lower() for a in r.headers["set-cookie"].split(";")]


def test_sse_logs_are_readable_with_only_the_cookie(server: Server, admin: httpx.Client) -> None:
    created = admin.post("/api/v1/runs", json={"pipeline": sleeper("cookie-sse", [("a", 0.1), ("b", 0.1)])})
    assert created.status_code == 202, created.text
    run_id = created.json()["id"]
    cookie = _cookie(_login(server, server.admin_key))
    text = ""
    with (
        _as_browser(server, cookie) as browser,
        browser.stream("GET", f"/api/v1/runs/{run_id}/logs", headers={"Accept": "text/event-stream"}) as s,
    ):
        assert s.status_code == 200
        assert s.headers["content-type"].startswith("text/event-stream")
        for line in s.iter_lines():
            text += line + "\n"
            if line.startswith("event: end"):
                break
    assert "event: step.finished" in text and "event: end" in text


def test_the_cookie_never_authorizes_writes(server: Server) -> None:
    cookie = _cookie(_login(server, server.admin_key))
    with _as_browser(server, cookie) as browser:
        for method, path, body in [
            ("POST", "/api/v1/runs", {"pipeline": "pipeline/iris-classifier"}),
            ("POST", "/api/v1/keys", {"name": "csrf", "scopes": ["admin"]}),
            ("POST", "/api/v1/auth/token", {}),
            ("PUT", "/api/v1/secrets/STOLEN", {"value": "x" * 8}),
            ("DELETE", "/api/v1/webhooks/x", None),
        ]:
            r = browser.request(method, path, json=body)
            assert r.status_code == 401, (method, path, r.text)
            assert "accepted for GET only" in r.json()["detail"]
            assert r.headers["www-authenticate"] == "Bearer"
        assert browser.get("/api/v1/runs").status_code == 200  # while reads work
        assert browser.head("/api/v1/runs").status_code == 405  # the routes are GET-only, as documented


def test_expired_forged_and_garbage_cookies_are_refused(server: Server) -> None:
    key_id = server.admin_key.split("_")[1]
    secret = (server.home / "secret_key").read_text().strip()
    now = int(time.time())
    claims = {"sub": key_id, "scopes": ["admin"], "aud": "mlops-nocode", "iat": now - 100, "exp": now - 10}
    expired = jwt.encode(claims, secret, algorithm="HS256")
    forged = jwt.encode(
        claims | {"exp": now + 600}, "not-the-secret-key-of-this-gateway-0123", algorithm="HS256"
    )
    for cookie, message in [
        (expired, "session cookie expired"),
        (forged, "invalid session cookie"),
        ("garbage", "invalid session cookie"),
        (server.admin_key, "invalid session cookie"),  # the cookie holds a signed token, never a key
    ]:
        with _as_browser(server, cookie) as browser:
            r = browser.get("/api/v1/runs")
            assert r.status_code == 401, (cookie[:12], r.text)
            assert message in r.json()["detail"] and "/?token=" in r.json()["detail"]
            page = browser.get("/")
            assert page.status_code == 200 and "Not signed in" in page.text


def test_a_bad_login_token_gets_a_401_page_and_no_cookie(server: Server) -> None:
    for bad in ["mlk_nope_nope", "not.a.token", ""]:
        r = _login(server, bad)
        assert r.status_code == 401, (bad, r.status_code)
        assert "set-cookie" not in r.headers
        assert "text/html" in r.headers["content-type"] and "Sign-in refused" in r.text


def test_logout_clears_the_cookie_and_revoking_the_key_ends_its_sessions(
    server: Server, admin: httpx.Client
) -> None:
    created = admin.post("/api/v1/keys", json={"name": "browser", "scopes": ["read"]}).json()
    cookie = _cookie(_login(server, created["key"]))
    with _as_browser(server, cookie) as browser:
        assert browser.get("/api/v1/runs").status_code == 200
        out = browser.post("/logout", follow_redirects=False)
        assert out.status_code == 303 and out.headers["location"] == "/"
        cleared = out.headers["set-cookie"].lower()
        assert cleared.startswith(f"{COOKIE}=") and "max-age=0" in cleared
        assert admin.delete(f"/api/v1/keys/{created['id']}").status_code == 200
        r = browser.get("/api/v1/runs")
        assert r.status_code == 401 and "revoked" in r.json()["detail"]
