"""Per-run tokens: what a Runner shows the gateway when it reports a run's events and its end.

A run token is a JWT (HS256, SECRET_KEY) with its own audience, so it is never accepted where an API key
or a user token is, and a user token is never accepted where a run token is. It names one run, the worker
that claimed it and the claim number (`attempt`): after a recovery hands the run to another worker, the
old worker's token no longer matches the run's row and its reports are refused (409), so nothing is
recorded twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"
AUDIENCE = "mlops-nocode/run"
DEFAULT_TTL = 24 * 3600


class InvalidRunToken(ValueError):
    """The token is missing, malformed, expired, or signed with another key (the message says which)."""


@dataclass(frozen=True, slots=True)
class RunClaims:
    """Who may report for which run."""

    run_id: str
    worker_id: str
    attempt: int
    expires: float
    deployment: str | None = None  # the token of one deployment's Runner: its end is that deployment's


def issue_run_token(
    secret: str,
    run_id: str,
    worker_id: str,
    attempt: int,
    ttl: int = DEFAULT_TTL,
    deployment: str | None = None,
) -> str:
    """A token that lets its holder report events and the end of `run_id` for claim `attempt` (with
    `deployment`: the events and the end of that deployment's part of the run)."""
    now = int(time.time())
    claims = {
        "aud": AUDIENCE,
        "sub": run_id,
        "wrk": worker_id,
        "att": attempt,
        "iat": now,
        "exp": now + ttl,
    }
    if deployment is not None:
        claims["dep"] = deployment
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_run_token(secret: str, token: str) -> RunClaims:
    """The claims of a valid run token, or InvalidRunToken."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            options={"require": ["exp", "sub", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidRunToken("run token expired") from None
    except jwt.PyJWTError:
        raise InvalidRunToken("invalid run token (one is issued when a worker claims the run)") from None
    run_id, worker_id, attempt = claims.get("sub"), claims.get("wrk"), claims.get("att")
    deployment = claims.get("dep")
    if not isinstance(run_id, str) or not isinstance(worker_id, str) or not isinstance(attempt, int):
        raise InvalidRunToken("invalid run token")
    if deployment is not None and not isinstance(deployment, str):
        raise InvalidRunToken("invalid run token")
    return RunClaims(run_id, worker_id, attempt, float(claims["exp"]), deployment)
