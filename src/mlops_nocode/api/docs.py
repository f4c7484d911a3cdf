"""The API documentation pages, `/docs` (Swagger UI) and `/redoc` (ReDoc), with their assets served by
the gateway itself: nothing is loaded from a CDN, so the pages work offline and a third party cannot
change the script that runs next to the user's session.

The Swagger UI and ReDoc bundles come from the PyPI package `fastapi-offline` (kept current with
swagger-ui-dist 5 and redoc 2, MIT); only its files are used, with pages of ours: no inline script (our
init scripts are files, in api/static), so the Content-Security-Policy allows scripts of this origin
only. Assets are served from a fixed list of names (no path from the request reaches the file system).
"""

from __future__ import annotations

import html
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import FileResponse, HTMLResponse

from mlops_nocode.api.browser import page_headers

router = APIRouter(include_in_schema=False)

ASSETS_URL = "/docs-assets"
_VENDOR = Path(fastapi_offline.__file__).parent / "static"
_OURS = Path(__file__).parent / "static"
ASSETS: dict[str, tuple[Path, str]] = {
    "swagger-ui-bundle.js": (_VENDOR / "swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    "swagger-ui.css": (_VENDOR / "swagger-ui.css", "text/css; charset=utf-8"),
    "redoc.standalone.js": (_VENDOR / "redoc.standalone.js", "text/javascript; charset=utf-8"),
    "favicon.png": (_VENDOR / "favicon.png", "image/png"),
    "swagger-init.js": (_OURS / "swagger-init.js", "text/javascript; charset=utf-8"),
    "redoc-init.js": (_OURS / "redoc-init.js", "text/javascript; charset=utf-8"),
}

# Scripts, styles, fetches: this origin only (Swagger UI runs under this, checked in Chromium).
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# ReDoc styles its elements with <style> tags its script writes (styled-components): 'unsafe-inline' for
# styles only (a style cannot run script); it runs its search in a blob: worker. Scripts: this origin.
REDOC_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; worker-src blob:; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

SWAGGER = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - Swagger UI</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" type="image/png" href="{assets}/favicon.png">
<link rel="stylesheet" href="{assets}/swagger-ui.css"></head>
<body><div id="swagger-ui" data-root="{root}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/swagger-init.js"></script>
</body></html>
"""

REDOC = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - ReDoc</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" type="image/png" href="{assets}/favicon.png"></head>
<body><div id="redoc" data-url="{root}/openapi.json"></div>
<script src="{assets}/redoc.standalone.js"></script>
<script src="{assets}/redoc-init.js"></script>
</body></html>
"""


def _page(template: str, request: Request, csp: str) -> HTMLResponse:
    root = html.escape(str(request.scope.get("root_path", "")).rstrip("/"), quote=True)
    title = html.escape(request.app.title)
    body = template.format(title=title, root=root, assets=root + ASSETS_URL)
    return HTMLResponse(body, headers=page_headers(csp))


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    return _page(SWAGGER, request, DOCS_CSP)


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    return _page(REDOC, request, REDOC_CSP)


@router.get(ASSETS_URL + "/{name}")
def asset(name: str) -> FileResponse:
    """One file of the documentation pages, by name from the fixed list."""
    found = ASSETS.get(name)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no documentation asset {name!r}")
    path, media_type = found
    headers = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}
    return FileResponse(path, media_type=media_type, headers=headers)
