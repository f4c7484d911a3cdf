"""What a browser gets: its session (opened from an API key or token, held in the `mlops_session` cookie)
and the security headers of the gateway's HTML pages."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterable
from typing import Any

from fastapi import HTTPException, Request, Response, status

from mlops_nocode.api.auth import SESSION_COOKIE, Principal
from mlops_nocode.api.state import Gateway
from mlops_nocode.runs.keys import SCOPES, expand_scopes
from mlops_nocode.runs.sessions import BrowserSession
from mlops_nocode.settings import session_scope_list

NO_STORE = {"Cache-Control": "no-store"}


def csp_hash(text: str) -> str:
    """A CSP source allowing exactly this inline `<style>` or `<script>` text."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def page_headers(csp: str) -> dict[str, str]:
    """Headers of every HTML page: the page's Content-Security-Policy, and no sniffing, framing, referrer
    or caching (pages may show who is signed in)."""
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Cache-Control": "no-store",
    }


def _ordered(scopes: Iterable[str]) -> list[str]:
    have = set(scopes)
    return [s for s in SCOPES if s in have]


def session_scopes(gw: Gateway, principal: Principal, asked: list[str] | None) -> list[str]:
    """The scopes of a new session: those asked for (each must be the caller's: 403 otherwise), else
    SESSION_SCOPES capped by the caller's. Admin only when asked for or listed in SESSION_SCOPES."""
    if asked is None:
        return _ordered(expand_scopes(session_scope_list(gw.settings.session_scopes)) & principal.scopes)
    lacking = sorted(expand_scopes(asked) - principal.scopes)
    if lacking:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"this credential lacks the {', '.join(lacking)} scope{'s' if len(lacking) > 1 else ''}: "
            f"ask for at most {', '.join(_ordered(principal.scopes))}",
        )
    return _ordered(expand_scopes(asked))


def open_session(
    gw: Gateway, principal: Principal, scopes: list[str], ttl: int | None = None
) -> tuple[BrowserSession, str]:
    """A new session of the caller's key; it never outlives the token it was opened with."""
    most = gw.settings.session_ttl_seconds
    return gw.sessions.create(principal.subject, scopes, min(ttl or most, most), principal.expires_at)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, value: str, expires_at: float) -> None:
    """The session cookie: HttpOnly, SameSite=Strict, Path=/, Secure over https; it expires with the
    session (Max-Age and Expires say the same; Starlette takes `expires` as seconds from now)."""
    ttl = max(1, int(expires_at - time.time()))
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=ttl,
        expires=ttl,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=_secure(request)
    )


def session_json(gw: Gateway, s: BrowserSession, with_csrf: bool = False) -> dict[str, Any]:
    """A session as the API shows it (the CSRF token only to the session itself)."""
    idle = gw.settings.session_idle_seconds
    out: dict[str, Any] = {
        "id": s.id,
        "key_id": s.key_id,
        "scopes": list(s.scopes),
        "created_at": s.created_at,
        "last_seen_at": s.last_seen_at,
        "expires_at": s.expires_at,
        "idle_expires_at": min(s.last_seen_at + idle, s.expires_at) if idle else None,
        "revoked_at": s.revoked_at,
    }
    if with_csrf:
        out["csrf_token"] = s.csrf_token
    return out
