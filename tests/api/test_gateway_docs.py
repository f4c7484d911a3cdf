"""The API documentation pages of a live gateway load everything from the gateway itself (no CDN) and
carry a strict Content-Security-Policy; the gateway's other HTML pages carry security headers too."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.api.conftest import Server

URL_ATTR = re.compile(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", re.I)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("docs") / "home", WORKERS="0")
    s.start()
    yield s
    s.stop()


def _csp(r: httpx.Response) -> dict[str, list[str]]:
    policy = r.headers["content-security-policy"]
    return {d.split()[0]: d.split()[1:] for d in (p.strip() for p in policy.split(";")) if d}


def _security_headers(r: httpx.Response) -> None:
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    csp = _csp(r)
    assert csp["default-src"] == ["'none'"] and csp["frame-ancestors"] == ["'none'"], csp
    assert csp["base-uri"] == ["'none'"]


@pytest.mark.parametrize(("page", "marker"), [("/docs", 'id="swagger-ui"'), ("/redoc", 'id="redoc"')])
def test_doc_pages_load_nothing_from_outside_and_carry_a_csp(live: Server, page: str, marker: str) -> None:
    with live.client() as anon:
        r = anon.get(page)
        assert r.status_code == 200 and marker in r.text
        assert "text/html" in r.headers["content-type"]
        assert "http://" not in r.text and "https://" not in r.text and "//cdn" not in r.text, r.text
        _security_headers(r)
        csp = _csp(r)
        assert csp["script-src"] == ["'self'"], csp  # no inline script, no other origin
        assert csp["connect-src"] == ["'self'"] and "'unsafe-eval'" not in str(csp)
        if page == "/docs":
            assert csp["style-src"] == ["'self'"]  # Swagger UI runs with no inline style either
        assert "<script>" not in r.text.replace(" ", "")  # every script is a file of the gateway
        urls = URL_ATTR.findall(r.text)
        assert any(u.endswith(".js") for u in urls) and urls, urls
        for url in urls:
            assert url.startswith("/") and not url.startswith("//"), url
            asset = anon.get(url)
            assert asset.status_code == 200, url
            assert asset.headers["x-content-type-options"] == "nosniff"
            kind = {"js": "text/javascript", "css": "text/css", "png": "image/png"}[url.rsplit(".", 1)[1]]
            assert asset.headers["content-type"].startswith(kind), (url, asset.headers["content-type"])
        bundle = anon.get(
            "/docs-assets/swagger-ui-bundle.js" if page == "/docs" else "/docs-assets/redoc.standalone.js"
        )
        assert len(bundle.content) > 500_000  # the real vendored bundle


def test_only_the_listed_assets_are_served(live: Server) -> None:
    with live.client() as anon:
        for name in ["nope.js", "..%2Fdocs.py", "%2e%2e%2f%2e%2e%2fsettings.py", "swagger-ui-bundle.js.map"]:
            assert anon.get(f"/docs-assets/{name}").status_code == 404, name
        assert anon.get("/docs-assets/../api/v1/runs").status_code == 401  # normalised: a route, not a file
        assert anon.get("/docs/oauth2-redirect").status_code == 404  # no OAuth2 redirect page


def test_the_home_and_login_pages_carry_a_strict_csp(live: Server) -> None:
    with live.client() as anon:
        for r in (anon.get("/"), anon.get("/", params={"token": "mlk_nope_nope"})):
            _security_headers(r)
            csp = _csp(r)
            assert csp["form-action"] == ["'self'"]
            assert " style=" not in r.text
            if '<div id="root">' in r.text:  # the built UI: its bundles from this origin, nothing inline
                assert csp["script-src"] == ["'self'"] and csp["style-src"] == ["'self'"], csp
                assert "<script>" not in r.text and "<style" not in r.text
            else:  # the plain page: no script at all, its one style by hash
                assert "script-src" not in csp and csp["style-src"][0].startswith("'sha256-"), csp
                assert "<script" not in r.text
