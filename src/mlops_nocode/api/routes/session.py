"""The browser's pages: `/` (the home page, and the login URL `/?token=...` that `mlops up` prints) and
`/logout`.

`GET /?token=KEY_OR_TOKEN[&scopes=read,write]` checks the credential, opens a browser session (see
runs.sessions: its own scopes, read and write unless others are asked for, admin only when asked for; its
own lifetime; revocable) and sets the `mlops_session` cookie (HttpOnly, SameSite=Strict, Path=/, Secure
over https), then redirects to `/` so the credential leaves the address bar and the history. A refused
credential gets a 401 page and no cookie. `/logout` revokes the session in the database and clears the
cookie. Every page carries a strict Content-Security-Policy (no script at all) and security headers.
"""

from __future__ import annotations

import contextlib
import html

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mlops_nocode import web
from mlops_nocode.api.auth import SESSION_COOKIE, Principal, authenticate, check_credential
from mlops_nocode.api.browser import (
    clear_session_cookie,
    csp_hash,
    open_session,
    page_headers,
    session_scopes,
    set_session_cookie,
)
from mlops_nocode.api.csrf import FROM_ANYWHERE_SAFE, own_origin
from mlops_nocode.api.state import Gateway
from mlops_nocode.runs.sessions import SessionRefused

router = APIRouter(include_in_schema=False)

STYLE = "body { font-family: sans-serif; max-width: 40em; margin: 3em auto }"
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>MLOps No-Code</title><style>{style}</style></head>
<body>
<h1>MLOps No-Code Platform</h1>
<p id="who">{who}</p>
<ul><li><a href="/docs">API documentation (Swagger UI)</a></li><li><a href="/redoc">ReDoc</a></li>
<li><a href="/openapi.json">OpenAPI schema</a></li></ul>
{note}{logout}
</body></html>
"""
# no script; the one inline style by its hash; the sign-out form posts to this origin only
PAGE_CSP = (
    f"default-src 'none'; style-src {csp_hash(STYLE)}; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SIGNED_OUT = "Not signed in: open the login link <code>mlops up</code> printed (<code>/?token=...</code>)."
UI_MISSING = (
    f'<p id="ui-missing">The no-code UI is not built: run <code>{html.escape(web.BUILD_HINT)}</code>, '
    "then reload.</p>\n"
)
LOGOUT_FORM = '<form method="post" action="/logout"><button type="submit">Sign out</button></form>'


def _page(who: str, signed_in: bool, status_code: int = 200, note: str = "") -> HTMLResponse:
    body = PAGE.format(style=STYLE, who=who, note=note, logout=LOGOUT_FORM if signed_in else "")
    return HTMLResponse(body, status_code=status_code, headers=page_headers(PAGE_CSP))


def _signed_in(request: Request) -> Principal | None:
    if SESSION_COOKIE not in request.cookies:
        return None
    try:
        return authenticate(request)
    except HTTPException:
        return None


def _refused(reason: str, status_code: int) -> HTMLResponse:
    return _page(
        f"Sign-in refused: {html.escape(reason)}. Open the login link <code>mlops up</code> printed again, "
        "or ask for a new API key.",
        False,
        status_code,
    )


@router.get("/", response_class=HTMLResponse)
def home(
    request: Request,
    token: str | None = Query(default=None, max_length=4096, description="login"),
    scopes: str | None = Query(default=None, max_length=100, description="the session's scopes"),
) -> Response:
    """The home page; with `?token=` a login: check the credential, open a session, set its cookie,
    redirect."""
    if token is None:
        app = web.index(web.dist_of(request.app.state.gateway.settings))
        if app is not None:  # the no-code UI: it asks GET /api/v1/session who is signed in
            return app
        principal = _signed_in(request)
        if principal is None:
            return _page(SIGNED_OUT, False, note=UI_MISSING)
        who = (
            f"Signed in (key {html.escape(principal.subject)}, scopes "
            f"{html.escape(', '.join(sorted(principal.scopes)))}). The API docs' requests use this session."
        )
        return _page(who, True, note=UI_MISSING)
    try:
        principal = check_credential(request, token.strip())
    except HTTPException as e:
        return _refused(str(e.detail), 401)
    gw: Gateway = request.app.state.gateway
    asked = None if scopes is None else [s.strip() for s in scopes.split(",") if s.strip()]
    unknown = [s for s in asked or [] if s not in ("read", "write", "admin")]
    if asked is not None and (unknown or not asked):
        return _refused(f"unknown scopes {unknown or scopes!r}: ask for some of read, write, admin", 400)
    try:
        granted = session_scopes(gw, principal, asked)
    except HTTPException as e:
        return _refused(str(e.detail), 403)
    session, value = open_session(gw, principal, granted)
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:  # the browser's former session ends with this sign-in (its cookie is replaced)
        with contextlib.suppress(SessionRefused):
            gw.sessions.revoke(gw.sessions.check(previous).id)
    redirect = RedirectResponse("/", status_code=303, headers=page_headers(PAGE_CSP))
    set_session_cookie(redirect, request, value, session.expires_at)
    return redirect


def _same_origin(request: Request) -> bool:
    """Whether a sign-out comes from this origin (or from outside any page: typed, bookmarked)."""
    site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    return (site is None or site in FROM_ANYWHERE_SAFE) and (
        origin is None or origin.lower().rstrip("/") == own_origin(request)
    )


@router.api_route("/logout", methods=["GET", "POST"])
def logout(request: Request) -> Response:
    """Sign out: revoke the cookie's session in the database (when the request comes from this origin:
    another page cannot sign the browser out) and clear the cookie; back to `/` (API keys stay valid)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and _same_origin(request):
        gw: Gateway = request.app.state.gateway
        with contextlib.suppress(SessionRefused):  # already ended, or not a session: only clear the cookie
            gw.sessions.revoke(gw.sessions.check(cookie).id)
    redirect = RedirectResponse("/", status_code=303, headers=page_headers(PAGE_CSP))
    clear_session_cookie(redirect, request)
    return redirect
