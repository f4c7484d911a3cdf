"""The no-code UI: the single-page app built from frontend/ (Vite) into `web/dist`, served by the gateway.

`/` answers the app's `index.html` (the `/?token=...` sign-in stays in api.routes.session), `/assets/*` its
hashed scripts and styles, and a GET under one of the app's own pages (APP_PAGES: `/runs/ID`,
`/catalogue/...`) that no API route matched a deep link into the app: the same `index.html`, whose router
shows the page. Any other unknown path stays the 404 it was. When the assets are not
built, those pages say what to run instead (never a 500). Every page carries a Content-Security-Policy
that allows scripts and styles from this origin only: no inline script, no CDN.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from mlops_nocode.api.browser import page_headers
from mlops_nocode.settings import Settings

DIST = Path(__file__).parent / "dist"
BUILD_HINT = "make ui (or: cd frontend && npm ci && npm run build)"
SPA_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# the app's top-level pages (frontend/src/App.tsx): keep in step
APP_PAGES = ("/catalogue", "/runs", "/builder", "/editor", "/targets", "/secrets", "/keys", "/monitoring")


def dist_of(settings: Settings) -> Path:
    """Where the built UI is: UI_DIR, else the package's `web/dist`."""
    return settings.ui_dir or DIST


def built(dist: Path = DIST) -> bool:
    """Whether the UI's assets are built (its `index.html` exists)."""
    return (dist / "index.html").is_file()


def index(dist: Path = DIST) -> Response | None:
    """The app's page, or None when the UI is not built."""
    try:
        text = (dist / "index.html").read_text(encoding="utf-8")
    except OSError:
        return None
    return HTMLResponse(text, headers=page_headers(SPA_CSP))


class Assets(StaticFiles):
    """The built scripts and styles: 404 (not a 500) while they are not built; content-hashed names, so
    browsers may keep them; never sniffed."""

    async def check_config(self) -> None:
        if self.directory is not None and Path(self.directory).is_dir():
            await super().check_config()

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["X-Content-Type-Options"] = "nosniff"
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


def deep_link(path: str) -> bool:
    """Whether a path is one of the app's pages (`/runs`, `/runs/ID`), not an API route or a file."""
    return any(path == p or path.startswith(p + "/") for p in APP_PAGES)


def install(app: FastAPI, dist: Path = DIST) -> None:
    """Serve the app's assets, and answer deep links into the app (unmatched GETs of its pages) with it."""
    app.mount("/assets", Assets(directory=dist / "assets", check_dir=False), name="ui-assets")

    async def not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        wanted = (
            exc.status_code == 404
            and exc.detail == "Not Found"  # the router's own 404: no route matched
            and request.method == "GET"
            and deep_link(request.url.path)
        )
        if wanted:
            page = index(dist)
            if page is not None:
                return page
        return await http_exception_handler(request, exc)

    app.add_exception_handler(HTTPException, not_found)
