"""The gateway serves the built UI at `/` and at deep links, under a strict CSP, without changing what the
API answers; without the built assets, `/` says what to run (never a 500)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import Server
from tests.web.conftest import login_url


def test_the_app_is_served_at_root_and_deep_links_under_a_strict_csp(ui_server: Server) -> None:
    with httpx.Client(base_url=ui_server.url, timeout=30) as c:
        for path in ("/", "/runs/some-run", "/catalogue/pipeline/iris-classifier?version=1.0.0", "/runs"):
            r = c.get(path)
            assert r.status_code == 200, path
            assert '<div id="root">' in r.text, path
            csp = r.headers["content-security-policy"]
            assert "script-src 'self';" in csp and "unsafe-inline" not in csp and "http" not in csp, csp
            assert r.headers["x-frame-options"] == "DENY"
            assert "<script>" not in r.text  # only <script type=module src=/assets/...>
        script = re.search(r'src="(/assets/[^"]+\.js)"', c.get("/").text)
        assert script, c.get("/").text
        js = c.get(script.group(1))
        assert js.status_code == 200 and js.headers["x-content-type-options"] == "nosniff"
        assert "javascript" in js.headers["content-type"]
        # what is not the app stays as it was: API 404s are JSON, other methods are not the app
        not_app = (("GET", "/api/v1/no-such-route"), ("POST", "/api/v1/nope"), ("GET", "/assets/x.js"))
        for method, path in not_app:
            r = c.request(method, path)
            assert r.status_code == 404, (method, path)
            assert r.json() == {"detail": "Not Found"}
        assert c.post("/runs/some-run").status_code in (404, 405)
        assert c.get("/no-such-page").status_code == 404  # only the app's own pages are deep links
        assert c.get("/health").json()["status"] == "ok"
        assert c.get("/openapi.json").json()["info"]["title"]
        assert c.get("/docs").status_code == 200
        assert c.get("/api/v1/runs").status_code == 401  # the API still needs a credential
        # the login URL still opens a session and sends the browser to the app
        r = c.get(login_url(ui_server).removeprefix(ui_server.url))
        assert r.status_code == 303 and r.headers["location"] == "/"
        assert "mlops_session" in r.headers["set-cookie"]
        assert c.get("/api/v1/session").json()["csrf_token"]


@pytest.fixture(scope="module")
def bare_server(tmp_path_factory: pytest.TempPathFactory) -> Server:
    empty = tmp_path_factory.mktemp("no-ui")
    s = Server(tmp_path_factory.mktemp("bare") / "home", UI_DIR=str(empty))
    return s


def test_without_built_assets_pages_say_what_to_run(bare_server: Server, tmp_path: Path) -> None:
    bare_server.start()
    try:
        with httpx.Client(base_url=bare_server.url, timeout=30) as c:
            r = c.get("/")
            assert r.status_code == 200
            assert "The no-code UI is not built" in r.text and "npm run build" in r.text
            assert "script-src" not in r.headers["content-security-policy"]  # the script-free page
            assert c.get("/assets/index.js").status_code == 404
            deep = c.get("/runs/abc")
            assert deep.status_code == 404 and deep.json() == {"detail": "Not Found"}
            assert c.get("/health").status_code == 200
    finally:
        bare_server.stop()
