"""Credentials: API keys (`mlk_...`, see runs.keys), short-lived tokens signed with SECRET_KEY, and
browser sessions (`mls_...`, see runs.sessions).

Tokens are JWTs (HS256, PyJWT): a standard format that n8n, Windmill or any HTTP client can carry as
`Authorization: Bearer ...`, with expiry (`exp`) checked by the library. Every protected route takes the
`authorize` dependency: GET needs the read scope, other methods the write scope; `require_admin` adds the
admin scope. (The routes are GET-only for reads: HEAD and OPTIONS are answered 405 before any check.)

Browsers (EventSource cannot send headers) sign in with the login URL (`/?token=...`) or
`POST /api/v1/session`, which set the `mlops_session` cookie to a browser session: a credential of its
own, with its own scopes (read and write by default), lifetime and server-side revocation. It is
accepted only as that cookie (refused as a Bearer header), and the cookie accepts nothing else (an API
key or token there is refused). Its writes must pass the CSRF checks of api.csrf. A session can never
mint a credential: no token, no key, no other session (`require_minting`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt
from fastapi import HTTPException, Request, status

from mlops_nocode.api.csrf import check_cookie_request
from mlops_nocode.runs.keys import SCOPES, KeyStore, expand_scopes
from mlops_nocode.runs.sessions import SessionRefused, SessionStore, is_session_value
from mlops_nocode.settings import trusted_origin_list

ALGORITHM = "HS256"
AUDIENCE = "mlops-nocode"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})  # need the read scope (HEAD/OPTIONS: 405 anyway)
SESSION_COOKIE = "mlops_session"
SIGN_IN = "sign in again with the login URL (/?token=...)"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key (or the key a token was issued from), and its scopes."""

    subject: str
    scopes: frozenset[str]
    via: str  # "key", "token" or "session" (the browser cookie)
    expires_at: float | None = None  # a token's or session's `exp` (UNIX time); None for an API key
    session_id: str | None = None  # the browser session, when via == "session"


def issue_token(
    secret: str, subject: str, scopes: frozenset[str], ttl: int, not_after: float | None = None
) -> tuple[str, int]:
    """A signed token valid `ttl` seconds, and never past `not_after` (the expiry of the token it is issued
    from: a token cannot extend itself); returns it and its expiry (UNIX time, the `exp` claim)."""
    now = time.time()
    exp = int(now + ttl) if not_after is None else int(min(now + ttl, not_after))
    claims = {"sub": subject, "scopes": sorted(scopes), "iat": int(now), "exp": exp, "aud": AUDIENCE}
    return jwt.encode(claims, secret, algorithm=ALGORITHM), exp


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"})


def authenticate(request: Request) -> Principal:
    """The caller's credential from `Authorization: Bearer ...`, or else the browser's session cookie
    (with the CSRF checks), or 401."""
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() == "bearer" and credential.strip():
        return check_credential(request, credential.strip())
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and not header:
        principal, csrf_token = check_session(request, cookie)
        check_cookie_request(
            request, csrf_token, trusted_origin_list(request.app.state.gateway.settings.csrf_trusted_origins)
        )
        return principal
    raise _unauthorized("missing credential: send Authorization: Bearer <API key or token>")


def check_session(request: Request, cookie: str) -> tuple[Principal, str]:
    """The browser session a cookie holds, and its CSRF token; 401 when it is not a live session (an API
    key or a token in the cookie is refused: the cookie carries sessions only)."""
    sessions: SessionStore = request.app.state.gateway.sessions
    try:
        found = sessions.check(cookie)
    except SessionRefused as e:
        raise _unauthorized(f"{e}: {SIGN_IN}") from None
    keys: KeyStore = request.app.state.gateway.keys
    key = keys.get(found.key_id)
    if key is None or key.revoked_at is not None:
        raise _unauthorized(f"the key this session was opened with is revoked: {SIGN_IN}")
    scopes = expand_scopes(found.scopes) & expand_scopes(key.scopes)
    return Principal(found.key_id, scopes, "session", found.expires_at, found.id), found.csrf_token


def check_credential(request: Request, credential: str) -> Principal:
    """Check an API key (`mlk_...`) or a signed token; 401 when it is unknown, revoked, expired or forged,
    or when it is a browser session (those are accepted only as the session cookie)."""
    if is_session_value(credential):
        raise _unauthorized(
            "a browser session is accepted only as the session cookie, never as a header: use an API key "
            "or a token (POST /api/v1/auth/token)"
        )
    keys: KeyStore = request.app.state.gateway.keys
    if credential.startswith("mlk_"):
        key = keys.check(credential)
        if key is None:
            raise _unauthorized("unknown or revoked API key")
        return Principal(key.id, expand_scopes(key.scopes), "key")
    return _check_token(request, credential)


def _check_token(request: Request, credential: str) -> Principal:
    renew, what = "ask for a new one (POST /api/v1/auth/token)", "token"
    try:
        claims = jwt.decode(
            credential,
            request.app.state.gateway.secret_key,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            options={"require": ["exp", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise _unauthorized(f"{what} expired: {renew}") from None
    except jwt.PyJWTError:
        raise _unauthorized(f"invalid {what}: {renew}") from None
    scopes = claims.get("scopes")
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise _unauthorized(f"invalid {what}: {renew}")
    keys: KeyStore = request.app.state.gateway.keys
    key = keys.get(str(claims.get("sub", "")))
    if key is None or key.revoked_at is not None:
        raise _unauthorized(f"the key this {what} was issued from is revoked")
    scopes_now = expand_scopes(scopes) & expand_scopes(key.scopes)
    return Principal(str(claims["sub"]), scopes_now, "token", float(claims["exp"]))


def _need(principal: Principal, scope: str) -> None:
    if scope not in principal.scopes:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"this credential lacks the {scope} scope")


def authorize(request: Request) -> Principal:
    """Read scope for GET, write scope for everything else."""
    principal = authenticate(request)
    _need(principal, "read" if request.method in READ_METHODS else "write")
    request.state.principal = principal
    return principal


def require_admin(request: Request) -> Principal:
    """The admin scope (managing API keys)."""
    principal = authorize(request)
    _need(principal, "admin")
    return principal


def refuse_session(principal: Principal, what: str) -> None:
    """403 when a browser session asks to mint a credential (a token, a key, another session): whoever
    gets hold of a session must not turn it into a credential usable elsewhere."""
    if principal.via == "session":
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"a browser session cannot {what}: use an API key (Authorization: Bearer mlk_...)",
        )


def require_minting(request: Request) -> Principal:
    """Any credential but a browser session (for the routes that mint credentials)."""
    principal = authenticate(request)
    refuse_session(principal, "mint credentials")
    return principal


def require_admin_minting(request: Request) -> Principal:
    """The admin scope, from anything but a browser session (creating API keys)."""
    principal = require_admin(request)
    refuse_session(principal, "create API keys")
    return principal


__all__ = [
    "SCOPES",
    "SESSION_COOKIE",
    "Principal",
    "authenticate",
    "authorize",
    "check_credential",
    "check_session",
    "issue_token",
    "refuse_session",
    "require_admin",
    "require_admin_minting",
    "require_minting",
]
