"""/api/v1/session (the calling browser's own session: open, read with its CSRF token, sign out) and
/api/v1/sessions (every live session; admin scope)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status

from mlops_nocode.api.auth import Principal, authenticate, require_admin, require_minting
from mlops_nocode.api.browser import (
    NO_STORE,
    clear_session_cookie,
    open_session,
    session_json,
    session_scopes,
    set_session_cookie,
)
from mlops_nocode.api.schemas import ErrorOut, SessionCurrent, SessionOut, SessionRequest
from mlops_nocode.api.state import Gateway, gateway

router = APIRouter(tags=["sessions"])
NO_SESSION: dict[int | str, dict[str, Any]] = {
    404: {"description": "the request carries no browser session", "model": ErrorOut}
}


def _own(principal: Principal, gw: Gateway) -> dict[str, Any]:
    if principal.via != "session" or principal.session_id is None:
        what = "a token" if principal.via == "token" else "an API key"
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no browser session: this request is authenticated by {what}, not the session cookie (sign in "
            "with /?token=... or POST /api/v1/session)",
        )
    found = gw.sessions.get(principal.session_id)
    assert found is not None
    return session_json(gw, found, with_csrf=True)


@router.post("/session", status_code=status.HTTP_201_CREATED, response_model=SessionCurrent)
def create_session(
    body: SessionRequest,
    request: Request,
    response: Response,
    principal: Principal = Depends(require_minting),
    gw: Gateway = Depends(gateway),
) -> dict[str, Any]:
    """Open a browser session for the calling API key or token and set its cookie (`mlops_session`;
    HttpOnly, SameSite=Strict): the login form of a web UI posts here with the key in the Authorization
    header. The answer carries the session's CSRF token. A session never outlives the token it was opened
    with; a browser session cannot open another (403)."""
    scopes = session_scopes(gw, principal, None if body.scopes is None else list(body.scopes))
    session, value = open_session(gw, principal, scopes, body.ttl_seconds)
    set_session_cookie(response, request, value, session.expires_at)
    response.headers.update(NO_STORE)
    return session_json(gw, session, with_csrf=True)


@router.get("/session", response_model=SessionCurrent, responses=NO_SESSION)
def current_session(
    response: Response, principal: Principal = Depends(authenticate), gw: Gateway = Depends(gateway)
) -> dict[str, Any]:
    """The calling browser's session and its CSRF token: a page of this gateway reads it once and sends
    it as `X-CSRF-Token` with every write (404 when the request carries no session cookie)."""
    response.headers.update(NO_STORE)
    return _own(principal, gw)


@router.delete("/session", response_model=SessionOut, responses=NO_SESSION)
def sign_out(
    request: Request,
    response: Response,
    principal: Principal = Depends(authenticate),
    gw: Gateway = Depends(gateway),
) -> dict[str, Any]:
    """Sign out: the session is revoked in the database (its cookie is refused from now on, by every
    gateway process) and the cookie is cleared. Needs the CSRF token, as every cookie write does."""
    own = _own(principal, gw)
    gw.sessions.revoke(own["id"])
    clear_session_cookie(response, request)
    found = gw.sessions.get(own["id"])
    assert found is not None
    return session_json(gw, found)


@router.get("/sessions", response_model=list[SessionOut], dependencies=[Depends(require_admin)])
def list_sessions(gw: Gateway = Depends(gateway)) -> list[dict[str, Any]]:
    """Every browser session not signed out nor past its absolute expiry (never their cookies or CSRF
    tokens)."""
    return [session_json(gw, s) for s in gw.sessions.live()]


@router.delete(
    "/sessions/{session_id}",
    response_model=SessionOut,
    dependencies=[Depends(require_admin)],
    responses={404: {"description": "no such live session", "model": ErrorOut}},
)
def revoke_session(session_id: str, gw: Gateway = Depends(gateway)) -> dict[str, Any]:
    """End a browser session at once (revoking its API key ends all of that key's sessions)."""
    if not gw.sessions.revoke(session_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no live session {session_id}")
    found = gw.sessions.get(session_id)
    assert found is not None
    return session_json(gw, found)
