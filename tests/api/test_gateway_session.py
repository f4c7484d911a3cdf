"""The browser session on a live gateway: a credential of its own (never the key's, never admin unless
asked for, usable only as the cookie), revocable server-side, with CSRF protection on its writes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import NewDb, Server, sleeper

COOKIE = "mlops_session"
TRUSTED = "https://ui.example.org"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, new_db: NewDb) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("gw") / "home", CSRF_TRUSTED_ORIGINS=TRUSTED, **new_db())
    s.start()
    yield s
    s.stop()


def _login(server: Server, credential: str, scopes: str | None = None, **headers: str) -> httpx.Response:
    params = {"token": credential} | ({"scopes": scopes} if scopes is not None else {})
    return httpx.get(f"{server.url}/", params=params, headers=headers, follow_redirects=False, timeout=30)


def _cookie(r: httpx.Response) -> str:
    header = r.headers["set-cookie"]
    name, _, rest = header.partition("=")
    assert name == COOKIE, header
    return rest.split(";", 1)[0]


def _attrs(r: httpx.Response) -> dict[str, str]:
    parts = [a.strip() for a in r.headers["set-cookie"].split(";")][1:]
    return {k.lower(): v for k, _, v in (a.partition("=") for a in parts)}


class Browser:
    """A browser signed in with a session cookie, sending what a page of the gateway would send."""

    def __init__(self, server: Server, cookie: str) -> None:
        self.cookie = cookie
        self.origin = server.url
        self.http = httpx.Client(base_url=server.url, headers={"Cookie": f"{COOKIE}={cookie}"}, timeout=30)

    def csrf(self) -> str:
        r = self.http.get("/api/v1/session", headers={"Sec-Fetch-Site": "same-origin"})
        assert r.status_code == 200, r.text
        return str(r.json()["csrf_token"])

    def write(self, method: str, path: str, json: object = None, **headers: str) -> httpx.Response:
        """A write as a page of this origin makes it (fetch metadata, Origin, the CSRF token)."""
        sent = {"Sec-Fetch-Site": "same-origin", "Origin": self.origin, "X-CSRF-Token": self.csrf()}
        sent.update(headers)
        return self.http.request(method, path, json=json, headers={k: v for k, v in sent.items() if v})

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()


def _browser(server: Server, credential: str, scopes: str | None = None) -> Browser:
    r = _login(server, credential, scopes)
    assert r.status_code == 303, r.text
    return Browser(server, _cookie(r))


def test_the_login_url_opens_a_read_write_session_that_is_not_the_admin_key(server: Server) -> None:
    r = _login(server, server.admin_key)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/" and r.headers["cache-control"] == "no-store"
    attrs = _attrs(r)
    assert {"httponly", "samesite", "path"} <= set(attrs) and attrs["samesite"].lower() == "strict"
    assert "secure" not in attrs  # plain http here
    assert 0 < int(attrs["max-age"]) <= 8 * 3600  # SESSION_TTL_SECONDS
    cookie = _cookie(r)
    assert cookie.startswith("mls_") and server.admin_key not in cookie and "." not in cookie  # no JWT
    with Browser(server, cookie) as b:
        me = b.http.get("/api/v1/auth/whoami").json()
        assert me["via"] == "session" and me["scopes"] == ["read", "write"], me  # never admin by default
        assert b.http.get("/api/v1/keys").status_code == 403
        page = b.http.get("/")
        assert page.status_code == 200 and server.admin_key not in page.text  # the UI, or the plain page


def test_the_session_is_accepted_only_as_the_cookie(server: Server, admin: httpx.Client) -> None:
    cookie = _cookie(_login(server, server.admin_key))
    with server.client(cookie) as bearer:  # the cookie's value as a Bearer header: refused
        r = bearer.get("/api/v1/runs")
        assert r.status_code == 401 and "only as the session cookie" in r.json()["detail"], r.text
        assert bearer.post("/api/v1/auth/token", json={}).status_code == 401
    token = admin.post("/api/v1/auth/token", json={"ttl_seconds": 600}).json()["access_token"]
    for not_a_session in (server.admin_key, token, "garbage", "mls_x", "mls_nope_nope"):
        with Browser(server, not_a_session) as b:  # keys and tokens are refused as the cookie
            r = b.http.get("/api/v1/runs")
            assert r.status_code == 401 and "invalid session cookie" in r.json()["detail"], not_a_session
            assert "/?token=" in r.json()["detail"]
            assert "Signed in (" not in b.http.get("/").text


def test_a_session_cannot_mint_credentials_even_with_admin(server: Server) -> None:
    with _browser(server, server.admin_key, "admin") as b:
        me = b.http.get("/api/v1/auth/whoami").json()
        assert me["scopes"] == ["admin", "read", "write"], me  # admin, because it was asked for
        assert b.http.get("/api/v1/keys").status_code == 200
        for path, body in [
            ("/api/v1/keys", {"name": "stolen", "scopes": ["admin"]}),
            ("/api/v1/auth/token", {}),
            ("/api/v1/session", {}),
        ]:
            r = b.write("POST", path, body)
            assert r.status_code == 403 and "a browser session cannot" in r.json()["detail"], (path, r.text)


def test_session_scopes_never_exceed_the_key(server: Server, admin: httpx.Client) -> None:
    reader = admin.post("/api/v1/keys", json={"name": "session-reader", "scopes": ["read"]}).json()["key"]
    with _browser(server, reader) as b:
        assert b.http.get("/api/v1/auth/whoami").json()["scopes"] == ["read"]  # the default, capped
        r = b.write("POST", "/api/v1/runs", {"pipeline": "pipeline/iris-classifier"})
        assert r.status_code == 403 and "write" in r.json()["detail"]
    refused = _login(server, reader, "write")
    assert refused.status_code == 403 and "set-cookie" not in refused.headers
    assert "lacks the write scope" in refused.text
    bad = _login(server, reader, "root")
    assert bad.status_code == 400 and "unknown scopes" in bad.text and "set-cookie" not in bad.headers
    with _browser(server, server.admin_key, "read") as b:
        assert b.http.get("/api/v1/auth/whoami").json()["scopes"] == ["read"]


def test_cookie_writes_need_the_csrf_token_and_this_origin(server: Server) -> None:
    run = {"pipeline": sleeper("csrf-ok", [("a", 0.01)])}
    with _browser(server, server.admin_key) as b:
        assert b.write("POST", "/api/v1/runs", run).status_code == 202  # as a page of the gateway
        assert b.write("POST", "/api/v1/runs", run, Origin=TRUSTED).status_code == 202  # trusted
        assert b.write("POST", "/api/v1/runs", run, Origin="", **{"Sec-Fetch-Site": ""}).status_code == 202
        for headers, message in [
            ({"X-CSRF-Token": ""}, "missing X-CSRF-Token"),
            ({"X-CSRF-Token": "not-the-token"}, "wrong X-CSRF-Token"),
            ({"Sec-Fetch-Site": "cross-site"}, "cross-origin write refused"),
            ({"Sec-Fetch-Site": "same-site"}, "cross-origin write refused"),  # another port of localhost
            ({"Sec-Fetch-Site": "none"}, "cross-origin write refused"),
            ({"Origin": "http://evil.example"}, "Origin 'http://evil.example' is not this gateway"),
            ({"Origin": "null"}, "is not this gateway"),
            ({"Origin": server.url.replace("127.0.0.1", "localhost")}, "is not this gateway"),
        ]:
            for method, path, body in [
                ("POST", "/api/v1/runs", run),
                ("PUT", "/api/v1/secrets/CSRF_PROBE", {"value": "x" * 8}),
                ("DELETE", "/api/v1/session", None),
            ]:
                r = b.write(method, path, body, **headers)
                assert r.status_code == 403, (headers, method, path, r.text)
                assert message in r.json()["detail"], (headers, r.json())
        # a cross-site post carries the cookie in old browsers, but neither the token nor the right Origin
        forged = b.http.post(
            "/api/v1/runs",
            json=run,
            headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
        )
        assert forged.status_code == 403
        # reads: another origin's page may not use the session; a followed link (navigation) may
        cors = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"}
        assert b.http.get("/api/v1/runs", headers=cors).status_code == 403
        nav = {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "navigate"}
        assert b.http.get("/api/v1/runs", headers=nav).status_code == 200
        assert b.http.get("/api/v1/runs").status_code == 200  # no fetch metadata (not a browser)
        assert b.http.head("/api/v1/runs").status_code == 405  # the routes are GET-only, as documented
    with server.client(server.admin_key) as admin:
        names = [s["name"] for s in admin.get("/api/v1/secrets").json()]
        assert "CSRF_PROBE" not in names


def test_bearer_requests_need_no_csrf_token_even_with_a_cookie(server: Server) -> None:
    cookie = _cookie(_login(server, server.admin_key))
    headers = {"Cookie": f"{COOKIE}={cookie}", "Sec-Fetch-Site": "cross-site"}
    with server.client(server.admin_key) as c:  # the Authorization header wins; the cookie is ignored
        r = c.post("/api/v1/auth/token", json={"ttl_seconds": 60}, headers=headers)
        assert r.status_code == 200, r.text


def test_sign_out_revokes_the_session_in_the_database(server: Server) -> None:
    with _browser(server, server.admin_key) as b:
        assert b.http.get("/api/v1/runs").status_code == 200
        out = b.http.post(
            "/logout", follow_redirects=False, headers={"Sec-Fetch-Site": "same-origin", "Origin": b.origin}
        )
        assert out.status_code == 303 and out.headers["location"] == "/"
        assert "max-age=0" in out.headers["set-cookie"].lower()
        assert "content-security-policy" in out.headers
        r = b.http.get("/api/v1/runs")  # the old cookie value, replayed: refused by the server
        assert r.status_code == 401 and "signed out" in r.json()["detail"], r.text
    with _browser(server, server.admin_key) as b:
        gone = b.write("DELETE", "/api/v1/session")
        assert gone.status_code == 200 and gone.json()["revoked_at"] is not None, gone.text
        assert "max-age=0" in gone.headers["set-cookie"].lower()
        assert b.http.get("/api/v1/runs").status_code == 401
    with _browser(server, server.admin_key) as b:  # another site cannot sign the browser out
        b.http.post("/logout", headers={"Sec-Fetch-Site": "cross-site"})
        assert b.http.get("/api/v1/runs").status_code == 200


def test_admins_list_and_revoke_sessions_and_revoking_the_key_ends_them(
    server: Server, admin: httpx.Client
) -> None:
    created = admin.post("/api/v1/keys", json={"name": "browser", "scopes": ["write"]}).json()
    with _browser(server, created["key"]) as first, _browser(server, created["key"]) as second:
        listed = {s["id"]: s for s in admin.get("/api/v1/sessions").json()}
        own = first.http.get("/api/v1/session").json()
        assert own["id"] in listed and listed[own["id"]]["key_id"] == created["id"]
        assert "csrf_token" not in listed[own["id"]] and own["csrf_token"] not in str(listed)
        assert admin.get("/api/v1/session").status_code == 404  # a key has no browser session
        assert admin.delete(f"/api/v1/sessions/{own['id']}").status_code == 200
        assert admin.delete(f"/api/v1/sessions/{own['id']}").status_code == 404
        assert first.http.get("/api/v1/runs").status_code == 401
        assert second.http.get("/api/v1/runs").status_code == 200
        assert admin.delete(f"/api/v1/keys/{created['id']}").status_code == 200
        r = second.http.get("/api/v1/runs")
        assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_post_session_opens_one_for_a_web_ui_login_form(server: Server, admin: httpx.Client) -> None:
    r = admin.post("/api/v1/session", json={"scopes": ["read"], "ttl_seconds": 120})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["scopes"] == ["read"] and body["csrf_token"] and body["expires_at"] <= time.time() + 121
    assert r.headers["cache-control"] == "no-store"
    with Browser(server, _cookie(r)) as b:
        assert b.http.get("/api/v1/session").json()["id"] == body["id"]
    reader = admin.post("/api/v1/keys", json={"name": "ui-reader", "scopes": ["read"]}).json()["key"]
    with server.client(reader) as c:
        assert c.post("/api/v1/session", json={"scopes": ["write"]}).status_code == 403
        assert c.post("/api/v1/session", json={"scopes": []}).status_code == 422


def test_https_login_marks_the_cookie_secure(server: Server) -> None:
    r = _login(server, server.admin_key, **{"X-Forwarded-Proto": "https"})  # from a trusted local proxy
    assert r.status_code == 303
    assert "secure" in _attrs(r)


def test_sse_logs_are_readable_with_only_the_cookie(server: Server, admin: httpx.Client) -> None:
    created = admin.post("/api/v1/runs", json={"pipeline": sleeper("cookie-sse", [("a", 0.1), ("b", 0.1)])})
    assert created.status_code == 202, created.text
    run_id = created.json()["id"]
    text = ""
    with (
        _browser(server, server.admin_key) as b,
        b.http.stream("GET", f"/api/v1/runs/{run_id}/logs", headers={"Accept": "text/event-stream"}) as s,
    ):
        assert s.status_code == 200
        assert s.headers["content-type"].startswith("text/event-stream")
        for line in s.iter_lines():
            text += line + "\n"
            if line.startswith("event: end"):
                break
    assert "event: step.finished" in text and "event: end" in text


def test_a_bad_login_token_gets_a_401_page_and_no_cookie(server: Server) -> None:
    for bad in ["mlk_nope_nope", "not.a.token", "", "mls_abc_def"]:
        r = _login(server, bad)
        assert r.status_code == 401, (bad, r.status_code)
        assert "set-cookie" not in r.headers
        assert "text/html" in r.headers["content-type"] and "Sign-in refused" in r.text
        assert "content-security-policy" in r.headers


def _until(moment: float) -> None:
    """Wait until the clock passes `moment` (the condition is the time itself: no request is made)."""
    while time.time() <= moment:
        time.sleep(min(0.2, max(0.01, moment - time.time())))


def test_sessions_expire_when_idle_and_never_outlive_their_token(tmp_path: Path) -> None:
    s = Server(tmp_path / "home", SESSION_IDLE_SECONDS="3")
    s.start()
    try:
        with _browser(s, s.admin_key) as b:
            first = b.http.get("/api/v1/session").json()
            assert first["idle_expires_at"] <= first["last_seen_at"] + 3
            while time.time() < first["idle_expires_at"] + 2:  # used all along: it slides
                assert b.http.get("/api/v1/runs").status_code == 200
                time.sleep(0.2)
            last_use = time.time()
            _until(last_use + 3.5)
            r = b.http.get("/api/v1/runs")
            assert r.status_code == 401 and "without use" in r.json()["detail"], r.text
        with s.client(s.admin_key) as admin:
            token = admin.post("/api/v1/auth/token", json={"ttl_seconds": 10}).json()
        with _browser(s, token["access_token"]) as b:
            session = b.http.get("/api/v1/session").json()
            assert session["expires_at"] <= token["expires_at"] + 1
            while time.time() <= session["expires_at"]:
                b.http.get("/api/v1/runs")  # in use, but the absolute end does not slide
                time.sleep(0.5)
            r = b.http.get("/api/v1/runs")
            assert r.status_code == 401 and "session expired" in r.json()["detail"], r.text
    finally:
        s.stop()
