"""Browser sessions: the credential a browser carries as its login cookie, and nothing else.

A session is `mls_<id>_<secret>` (the secret is 32 random bytes; only its SHA-256 is stored, like API
keys). It belongs to the API key it was opened with, carries its own scopes (read and write by default,
admin only when asked for; never more than the key's), and ends at the first of: its absolute expiry
(SESSION_TTL_SECONDS after sign-in, never past the token it was opened with), SESSION_IDLE_SECONDS
without a request (sliding; 0 turns it off), its revocation (sign-out, or an admin), or its key's
revocation. Each session has a random CSRF token (the synchronizer token its unsafe requests must send in
`X-CSRF-Token`, see api.csrf).

Every check reads the database (a revocation by any gateway process takes effect at once); the last use
is written at most every TOUCH_SECONDS (or a tenth of the idle timeout, when shorter), so a busy browser
costs one small write a minute, not one per request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, select, update

from mlops_nocode.runs.db import AnyRow, Database
from mlops_nocode.runs.models import BrowserSessionRow

PREFIX = "mls_"
TOUCH_SECONDS = 60.0

_COLUMNS = (
    BrowserSessionRow.id,
    BrowserSessionRow.secret_hash,
    BrowserSessionRow.key_id,
    BrowserSessionRow.scopes,
    BrowserSessionRow.csrf_token,
    BrowserSessionRow.created_at,
    BrowserSessionRow.last_seen_at,
    BrowserSessionRow.expires_at,
    BrowserSessionRow.revoked_at,
)
_BY_ID = select(*_COLUMNS).where(BrowserSessionRow.id == bindparam("id"))


class SessionRefused(ValueError):
    """The cookie names no live session (the message says why: unknown, expired, idle, signed out)."""


@dataclass(frozen=True, slots=True)
class BrowserSession:
    """A session as the gateway uses and lists it (never its secret)."""

    id: str
    key_id: str
    scopes: tuple[str, ...]
    csrf_token: str
    created_at: float
    last_seen_at: float
    expires_at: float
    revoked_at: float | None

    @classmethod
    def of(cls, row: BrowserSessionRow | AnyRow) -> BrowserSession:
        return cls(
            row.id,
            row.key_id,
            tuple(s for s in row.scopes.split(",") if s),
            row.csrf_token,
            row.created_at,
            row.last_seen_at,
            row.expires_at,
            row.revoked_at,
        )


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def is_session_value(value: str) -> bool:
    """Whether a credential has the form of a session (so it must come as the cookie, never a header)."""
    return value.startswith(PREFIX)


class SessionStore:
    """Open, check, list and revoke browser sessions."""

    def __init__(self, db: Database, idle_seconds: float) -> None:
        self.db = db
        self.idle_seconds = idle_seconds
        self.touch_seconds = min(TOUCH_SECONDS, idle_seconds / 10) if idle_seconds else TOUCH_SECONDS

    def create(
        self, key_id: str, scopes: list[str] | tuple[str, ...], ttl: float, not_after: float | None = None
    ) -> tuple[BrowserSession, str]:
        """A new session of `key_id` with these scopes, living `ttl` seconds and never past `not_after`;
        returns it and the cookie value (shown once, never stored). Expired sessions are purged."""
        now = time.time()
        secret = secrets.token_urlsafe(32)
        row = BrowserSessionRow(
            id=secrets.token_hex(8),
            secret_hash=_hash(secret),
            key_id=key_id,
            scopes=",".join(scopes),
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + ttl if not_after is None else min(now + ttl, not_after),
            revoked_at=None,
        )
        with self.db.session() as s:
            s.execute(delete(BrowserSessionRow).where(BrowserSessionRow.expires_at < now))
            s.add(row)
        return BrowserSession.of(row), f"{PREFIX}{row.id}_{secret}"

    def check(self, value: str) -> BrowserSession:
        """The live session a cookie value names (its last use recorded), or SessionRefused saying why."""
        if not is_session_value(value):
            raise SessionRefused("invalid session cookie")
        session_id, sep, secret = value[len(PREFIX) :].partition("_")
        if not sep or not secret:
            raise SessionRefused("invalid session cookie")
        with self.db.read() as c:
            row = c.execute(_BY_ID, {"id": session_id}).first()
        if row is None or not hmac.compare_digest(row.secret_hash, _hash(secret)):
            raise SessionRefused("invalid session cookie")
        found = BrowserSession.of(row)
        now = time.time()
        if found.revoked_at is not None:
            raise SessionRefused("this session was signed out")
        if now >= found.expires_at:
            raise SessionRefused("session expired")
        if self.idle_seconds and now - found.last_seen_at >= self.idle_seconds:
            raise SessionRefused(f"session expired after {self.idle_seconds:g} s without use")
        if now - found.last_seen_at >= self.touch_seconds:
            with self.db.session() as s:
                s.execute(
                    update(BrowserSessionRow)
                    .where(BrowserSessionRow.id == session_id, BrowserSessionRow.revoked_at.is_(None))
                    .values(last_seen_at=now)
                )
        return found

    def revoke(self, session_id: str) -> bool:
        """End a session at once, for every gateway process; False when there is no such live session."""
        with self.db.session() as s:
            done = s.execute(
                update(BrowserSessionRow)
                .where(BrowserSessionRow.id == session_id, BrowserSessionRow.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
            return bool(getattr(done, "rowcount", 0))

    def get(self, session_id: str) -> BrowserSession | None:
        with self.db.read() as c:
            row = c.execute(_BY_ID, {"id": session_id}).first()
        return None if row is None else BrowserSession.of(row)

    def live(self) -> list[BrowserSession]:
        """Sessions neither revoked nor past their absolute expiry (idle ones included), oldest first."""
        query = (
            select(*_COLUMNS)
            .where(BrowserSessionRow.revoked_at.is_(None), BrowserSessionRow.expires_at > time.time())
            .order_by(BrowserSessionRow.created_at)
        )
        with self.db.read() as c:
            return [BrowserSession.of(r) for r in c.execute(query)]
