"""Credentials: API keys (`mlk_...`, see runs.keys) and short-lived tokens signed with SECRET_KEY.

Tokens are JWTs (HS256, PyJWT): a standard format that n8n, Windmill or any HTTP client can carry as
`Authorization: Bearer ...`, with expiry (`exp`) checked by the library. Every protected route takes the
`authorize` dependency: GET needs the read scope, other methods the write scope; `require_admin` adds the
admin scope. (The routes are GET-only for reads: HEAD and OPTIONS are answered 405 before any check.)

Browsers (EventSource cannot send headers) sign in with the login URL (`/?token=...`), which sets the
`mlops_session` cookie: an HttpOnly, SameSite=Strict token like the ones above. The cookie is accepted for
GET only; anything that writes still needs the Authorization header, so a forged cross-site
request cannot change anything.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt
from fastapi import HTTPException, Request, status

from mlops_nocode.runs.keys import SCOPES, KeyStore, expand_scopes

ALGORITHM = "HS256"
AUDIENCE = "mlops-nocode"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})  # need the read scope (HEAD/OPTIONS: 405 anyway)
COOKIE_METHODS = frozenset({"GET"})  # the only method a session cookie is accepted for (CSRF)
SESSION_COOKIE = "mlops_session"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key (or the key a token was issued from), and its scopes."""

    subject: str
    scopes: frozenset[str]
    via: str  # "key", "token" or "session" (the browser cookie)
    expires_at: float | None = None  # a token's or session's `exp` (UNIX time); None for an API key


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
    """The caller's credential from `Authorization: Bearer ...` (or, for GET only, the browser's session
    cookie), or 401."""
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() == "bearer" and credential.strip():
        return check_credential(request, credential.strip())
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and not header:
        if request.method not in COOKIE_METHODS:
            raise _unauthorized(
                f"the browser session cookie is accepted for GET only: send {request.method} "
                "requests with Authorization: Bearer <API key or token>"
            )
        return _check_token(request, cookie, "session")
    raise _unauthorized("missing credential: send Authorization: Bearer <API key or token>")


def check_credential(request: Request, credential: str) -> Principal:
    """Check an API key (`mlk_...`) or a signed token; 401 when it is unknown, revoked, expired or forged."""
    keys: KeyStore = request.app.state.gateway.keys
    if credential.startswith("mlk_"):
        key = keys.check(credential)
        if key is None:
            raise _unauthorized("unknown or revoked API key")
        return Principal(key.id, expand_scopes(key.scopes), "key")
    return _check_token(request, credential, "token")


def _check_token(request: Request, credential: str, via: str) -> Principal:
    renew = (
        "sign in again with the login URL (/?token=...)"
        if via == "session"
        else "ask for a new one (POST /api/v1/auth/token)"
    )
    what = "session cookie" if via == "session" else "token"
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
    return Principal(str(claims["sub"]), scopes_now, via, float(claims["exp"]))


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


__all__ = [
    "SCOPES",
    "SESSION_COOKIE",
    "Principal",
    "authenticate",
    "authorize",
    "check_credential",
    "issue_token",
    "require_admin",
]
