"""API keys: `mlk_<id>_<secret>` where the secret is 32 random bytes; only SHA-256(secret) is stored.

A plain SHA-256 (not a slow password hash) is enough because the secret is random and 256 bits long:
there is no dictionary to try, and lookups stay cheap on every request. Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select

from mlops_nocode.runs.db import Database
from mlops_nocode.runs.models import ApiKeyRow

SCOPES = ("read", "write", "admin")
PREFIX = "mlk_"


def expand_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """admin implies write, write implies read."""
    out = set(scopes)
    if "admin" in out:
        out.add("write")
    if "write" in out:
        out.add("read")
    return frozenset(out & set(SCOPES))


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as listed (never with its secret)."""

    id: str
    name: str
    scopes: tuple[str, ...]
    created_at: float
    revoked_at: float | None

    @classmethod
    def of(cls, row: ApiKeyRow) -> ApiKey:
        return cls(row.id, row.name, tuple(row.scopes.split(",")), row.created_at, row.revoked_at)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    """Create, check, list and revoke API keys."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, name: str, scopes: list[str] | tuple[str, ...]) -> tuple[ApiKey, str]:
        """A new key; returns it and its token (shown once, never stored)."""
        bad = sorted(set(scopes) - set(SCOPES))
        if bad or not scopes:
            raise ValueError(f"unknown scopes {bad}; use some of {', '.join(SCOPES)}")
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        row = ApiKeyRow(
            id=key_id,
            name=name,
            key_hash=_hash(secret),
            scopes=",".join(s for s in SCOPES if s in scopes),
            created_at=time.time(),
        )
        with self.db.session() as s:
            s.add(row)
        return ApiKey.of(row), f"{PREFIX}{key_id}_{secret}"

    def check(self, token: str) -> ApiKey | None:
        """The live key a token names, or None."""
        if not token.startswith(PREFIX):
            return None
        key_id, sep, secret = token[len(PREFIX) :].partition("_")
        if not sep or not secret:
            return None
        with self.db.session() as s:
            row = s.get(ApiKeyRow, key_id)
            if row is None or row.revoked_at is not None:
                return None
            if not hmac.compare_digest(row.key_hash, _hash(secret)):
                return None
            return ApiKey.of(row)

    def get(self, key_id: str) -> ApiKey | None:
        with self.db.session() as s:
            row = s.get(ApiKeyRow, key_id)
            return None if row is None else ApiKey.of(row)

    def list(self) -> list[ApiKey]:
        with self.db.session() as s:
            return [ApiKey.of(r) for r in s.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at))]

    def revoke(self, key_id: str) -> bool:
        """Revoke a key; False when there is no such live key."""
        with self.db.session() as s:
            row = s.get(ApiKeyRow, key_id)
            if row is None or row.revoked_at is not None:
                return False
            row.revoked_at = time.time()
            return True

    def count(self) -> int:
        with self.db.session() as s:
            return int(s.scalar(select(func.count()).select_from(ApiKeyRow)) or 0)
