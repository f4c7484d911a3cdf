"""The browser's login session: `/` (the page, and the login URL `/?token=...` that `mlops up` prints)
and `/logout`.

`GET /?token=KEY_OR_TOKEN` checks the credential, then sets the `mlops_session` cookie (HttpOnly,
SameSite=Strict, Path=/, Secure over https) holding a signed token that lives `TOKEN_TTL_SECONDS`, and
redirects to `/` so the credential leaves the address bar and the history. A refused credential gets a
401 page and no cookie. The cookie authenticates GET only (see api.auth): enough for EventSource
(run logs as Server-Sent Events) and the API docs' "Try it out" reads.
"""

from __future__ import annotations

import html
import time

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mlops_nocode.api.auth import SESSION_COOKIE, Principal, authenticate, check_credential, issue_token
from mlops_nocode.api.state import Gateway

router = APIRouter(include_in_schema=False)

NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>MLOps No-Code</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>MLOps No-Code Platform</h1>
<p id="who">{who}</p>
<ul><li><a href="/docs">API documentation (Swagger UI)</a></li><li><a href="/redoc">ReDoc</a></li>
<li><a href="/openapi.json">OpenAPI schema</a></li></ul>
{logout}
</body></html>
"""

SIGNED_OUT = "Not signed in: open the login link <code>mlops up</code> printed (<code>/?token=...</code>)."
LOGOUT_FORM = '<form method="post" action="/logout"><button type="submit">Sign out</button></form>'


def _page(who: str, signed_in: bool) -> str:
    return PAGE.format(who=who, logout=LOGOUT_FORM if signed_in else "")


def _signed_in(request: Request) -> Principal | None:
    if SESSION_COOKIE not in request.cookies:
        return None
    try:
        return authenticate(request)
    except HTTPException:
        return None


@router.get("/", response_class=HTMLResponse)
def home(
    request: Request, token: str | None = Query(default=None, max_length=4096, description="login")
) -> Response:
    """The home page; with `?token=` a login: check the credential, set the session cookie, redirect."""
    if token is None:
        principal = _signed_in(request)
        if principal is None:
            return HTMLResponse(_page(SIGNED_OUT, False), headers=NO_STORE)
        who = (
            f"Signed in (key {html.escape(principal.subject)}, scopes "
            f"{html.escape(', '.join(sorted(principal.scopes)))}). Reads in the API docs use this session; "
            "writes need 'Authorize' with an API key."
        )
        return HTMLResponse(_page(who, True), headers=NO_STORE)
    try:
        principal = check_credential(request, token.strip())
    except HTTPException as e:
        reason = html.escape(str(e.detail))
        body = _page(
            f"Sign-in refused: {reason}. Open the login link <code>mlops up</code> printed again, or ask "
            "for a new API key.",
            False,
        )
        return HTMLResponse(body, status_code=401, headers=NO_STORE)
    gw: Gateway = request.app.state.gateway
    # a session never outlives the token it came from (principal.expires_at)
    most = gw.settings.token_ttl_seconds
    value, exp = issue_token(gw.secret_key, principal.subject, principal.scopes, most, principal.expires_at)
    ttl = max(1, exp - int(time.time()))
    redirect = RedirectResponse("/", status_code=303, headers=NO_STORE)
    # Max-Age and Expires (Starlette takes `expires` as seconds from now, like max_age) say the same
    redirect.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=ttl,
        expires=ttl,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return redirect


@router.api_route("/logout", methods=["GET", "POST"])
def logout(request: Request) -> Response:
    """Clear the session cookie and go back to `/` (the API keys stay valid)."""
    redirect = RedirectResponse("/", status_code=303, headers=NO_STORE)
    redirect.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
    return redirect
