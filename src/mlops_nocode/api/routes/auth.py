"""/api/v1/auth/token (short-lived tokens), /api/v1/auth/whoami, and /api/v1/keys (API keys; admin scope)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, status

from mlops_nocode.api.auth import (
    Principal,
    authenticate,
    issue_token,
    require_admin,
    require_admin_minting,
    require_minting,
)
from mlops_nocode.api.schemas import (
    ErrorOut,
    KeyCreate,
    KeyCreated,
    KeyOut,
    TokenRequest,
    TokenResponse,
    WhoAmI,
)
from mlops_nocode.api.state import Gateway, gateway
from mlops_nocode.runs.keys import LastAdminKey, expand_scopes

router = APIRouter(tags=["auth"])


@router.post("/auth/token", response_model=TokenResponse)
def token(
    body: TokenRequest, principal: Principal = Depends(require_minting), gw: Gateway = Depends(gateway)
) -> TokenResponse:
    """A signed token for the calling credential, with the scopes asked for (default: all of the caller's;
    an empty list is a 422), valid `ttl_seconds` (default and maximum: TOKEN_TTL_SECONDS).

    Any API key or token may ask (it needs no write scope: it can only narrow what it already has); a
    browser session may not (403). A scope the caller lacks is refused (403), not dropped; a token asked
    for with a token never outlives it."""
    limit = gw.settings.token_ttl_seconds
    if body.ttl_seconds is not None and body.ttl_seconds > limit:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            [
                {
                    "loc": ["body", "ttl_seconds"],
                    "msg": f"ttl_seconds {body.ttl_seconds} is above the maximum {limit} "
                    f"(TOKEN_TTL_SECONDS): ask for at most {limit}",
                    "type": "less_than_equal",
                }
            ],
        )
    scopes = principal.scopes
    if body.scopes is not None:
        lacking = sorted(set(body.scopes) - principal.scopes)
        if lacking:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"this credential lacks the {', '.join(lacking)} scope{'s' if len(lacking) > 1 else ''}: "
                f"ask for at most {', '.join(sorted(principal.scopes)) or 'no scope'}",
            )
        scopes = expand_scopes(body.scopes)
    ttl = body.ttl_seconds or limit
    value, exp = issue_token(gw.secret_key, principal.subject, scopes, ttl, principal.expires_at)
    return TokenResponse(access_token=value, token_type="bearer", expires_at=exp, scopes=sorted(scopes))


@router.get("/auth/whoami", response_model=WhoAmI)
def whoami(principal: Principal = Depends(authenticate), gw: Gateway = Depends(gateway)) -> WhoAmI:
    """The calling credential: its key id and name, scopes, and whether it came as a key, a token or the
    browser's session cookie (a cheap way to check a credential: `mlops login` uses it)."""
    key = gw.keys.get(principal.subject)
    return WhoAmI(
        key_id=principal.subject,
        name=key.name if key else None,
        scopes=sorted(principal.scopes),
        via="session" if principal.via == "session" else "token" if principal.via == "token" else "key",
    )


@router.get("/keys", response_model=list[KeyOut], dependencies=[Depends(require_admin)])
def list_keys(gw: Gateway = Depends(gateway)) -> list[dict[str, Any]]:
    """Every API key (never their secrets)."""
    return [k.to_json() for k in gw.keys.list()]


@router.post(
    "/keys",
    status_code=status.HTTP_201_CREATED,
    response_model=KeyCreated,
    dependencies=[Depends(require_admin_minting)],
)
def create_key(body: KeyCreate, gw: Gateway = Depends(gateway)) -> dict[str, Any]:
    """A new API key; its value is in this answer only. Needs an admin API key or token (a browser
    session, even an admin one, cannot create keys)."""
    key, value = gw.keys.create(body.name, list(body.scopes))
    return key.to_json() | {"key": value}


@router.delete(
    "/keys/{key_id}",
    response_model=KeyOut,
    dependencies=[Depends(require_admin)],
    responses={
        404: {"description": "no such live key", "model": ErrorOut},
        409: {"description": "the last live admin key", "model": ErrorOut},
    },
)
def revoke_key(key_id: str, gw: Gateway = Depends(gateway)) -> dict[str, Any]:
    """Revoke a key (tokens and browser sessions issued from it stop working too). The last live admin
    key cannot be revoked (409): create another admin key first."""
    try:
        revoked = gw.keys.revoke(key_id)
    except LastAdminKey as e:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f'{e}; create another admin key first (POST /api/v1/keys with scopes ["admin"], or '
            "`mlops keys create --admin` on the gateway's machine), then revoke this one",
        ) from None
    if not revoked:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no live key {key_id}")
    found = gw.keys.get(key_id)
    assert found is not None
    return found.to_json()
