"""API keys: `mlk_<id>_<secret>` where the secret is 32 random bytes; only SHA-256(secret) is stored.

A plain SHA-256 (not a slow password hash) is enough because the secret is random and 256 bits long:
there is no dictionary to try, and lookups stay cheap on every request. Comparison is constant-time.

The last live admin key cannot be revoked (LastAdminKey): without one, nobody could manage keys through
the API again. The check and the revocation are one transaction, serialised with every other revocation
(SQLite: BEGIN IMMEDIATE; PostgreSQL: a transaction-scoped advisory lock, then a fresh read), so two
concurrent revocations of the last two admin keys cannot both succeed.

Verified keys are cached in memory for `CACHE_SECONDS` (2 s), so a busy client costs one database read
per key every 2 s instead of one per request. A revocation through this KeyStore (this process) takes
effect at once; one made by another process (another gateway, the CLI) takes effect here within
CACHE_SECONDS. Only verified keys are cached (by id, with their stored hash): an unknown id or a
revoked key always goes to the database, and a wrong secret for a cached id is refused from the cache.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select, text

from mlops_nocode.runs.db import AnyRow, Database
from mlops_nocode.runs.models import ApiKeyRow

SCOPES = ("read", "write", "admin")
PREFIX = "mlk_"
CACHE_SECONDS = 2.0  # how long a verified key is trusted without reading the database again
CACHE_MAX = 10_000  # entries; the cache is emptied when it would grow past this
NAME_RE = re.compile(r"^[A-Za-z0-9_.@ -]{1,100}$")  # what a key's name may be (it appears in commits)
REVOKE_LOCK = 0x6D6C6B7276  # PostgreSQL advisory lock id serialising revocations ("mlkrv")


class LastAdminKey(ValueError):
    """Revoking this key would leave no live admin key."""


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
    def of(cls, row: ApiKeyRow | AnyRow) -> ApiKey:
        return cls(row.id, row.name, tuple(row.scopes.split(",")), row.created_at, row.revoked_at)

    def to_json(self) -> dict[str, Any]:
        """The key as the API and `mlops keys --json` show it."""
        return {
            "id": self.id,
            "name": self.name,
            "scopes": list(self.scopes),
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


_COLUMNS = (
    ApiKeyRow.id,
    ApiKeyRow.name,
    ApiKeyRow.key_hash,
    ApiKeyRow.scopes,
    ApiKeyRow.created_at,
    ApiKeyRow.revoked_at,
)
_BY_ID = select(*_COLUMNS).where(ApiKeyRow.id == bindparam("id"))  # built once: SQL compiled once


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    """Create, check, list and revoke API keys."""

    def __init__(self, db: Database, cache_seconds: float = CACHE_SECONDS) -> None:
        self.db = db
        self.cache_seconds = cache_seconds
        # key id -> (stored hash, key, when read); a verified live key, or any key `get` read
        self._cache: dict[str, tuple[str, ApiKey, float]] = {}
        self._generation = 0  # bumped by each revoke: a read that started before it is not cached
        self._lock = threading.Lock()

    def _cached(self, key_id: str, margin: float = 0.0) -> tuple[str, ApiKey] | None:
        hit = self._cache.get(key_id)
        if hit is None or time.monotonic() - hit[2] >= self.cache_seconds - margin:
            return None
        return hit[0], hit[1]

    def in_memory(self, token: str) -> bool:
        """Whether `check(token)`, called right after, will answer from the cache without a database read
        (so without I/O): the entry is fresh for at least a quarter of CACHE_SECONDS more."""
        key_id, sep, _ = token.removeprefix(PREFIX).partition("_")
        margin = self.cache_seconds / 4
        return token.startswith(PREFIX) and bool(sep) and self._cached(key_id, margin) is not None

    def _read(self, key_id: str) -> tuple[str, ApiKey] | None:
        """The stored hash and the key, from the database; cached unless a revoke happened meanwhile."""
        generation, now = self._generation, time.monotonic()
        with self.db.read() as c:
            row = c.execute(_BY_ID, {"id": key_id}).first()
        if row is None:
            return None
        found = (str(row.key_hash), ApiKey.of(row))
        with self._lock:
            if generation == self._generation:
                if len(self._cache) >= CACHE_MAX:
                    self._cache.clear()
                self._cache[key_id] = (*found, now)
        return found

    def create(self, name: str, scopes: list[str] | tuple[str, ...]) -> tuple[ApiKey, str]:
        """A new key; returns it and its token (shown once, never stored)."""
        bad = sorted(set(scopes) - set(SCOPES))
        if bad or not scopes:
            raise ValueError(f"unknown scopes {bad}; use some of {', '.join(SCOPES)}")
        if not NAME_RE.match(name):
            raise ValueError(
                f"invalid key name {name!r}: 1 to 100 letters, digits, spaces and _ . @ - (e.g. ci-bot)"
            )
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
        found = self._cached(key_id) or self._read(key_id)
        if found is None or found[1].revoked_at is not None:
            return None
        stored, key = found
        return key if hmac.compare_digest(stored, _hash(secret)) else None

    def get(self, key_id: str) -> ApiKey | None:
        """A key by id, revoked or not (as of at most CACHE_SECONDS ago for another process's changes)."""
        found = self._cached(key_id) or self._read(key_id)
        return None if found is None else found[1]

    def list(self) -> list[ApiKey]:
        with self.db.session() as s:
            return [ApiKey.of(r) for r in s.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at))]

    def revoke(self, key_id: str) -> bool:
        """Revoke a key; False when there is no such live key; LastAdminKey when it is the last live key
        with the admin scope."""
        with self.db.session() as s:
            if self.db.dialect == "postgresql":  # READ COMMITTED: the reads below start after the lock
                s.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": REVOKE_LOCK})
            row = s.get(ApiKeyRow, key_id)
            if row is None or row.revoked_at is not None:
                return False
            if "admin" in row.scopes.split(","):
                others = s.scalar(
                    select(func.count())
                    .select_from(ApiKeyRow)
                    .where(
                        ApiKeyRow.revoked_at.is_(None),
                        ApiKeyRow.scopes.contains("admin"),
                        ApiKeyRow.id != key_id,
                    )
                )
                if not others:
                    raise LastAdminKey(
                        f"key {key_id} ({row.name}) is the last live admin key: revoking it would leave "
                        "nobody able to manage keys"
                    )
            row.revoked_at = time.time()
        with self._lock:  # after the commit: reads from now on see the revocation
            self._generation += 1
            self._cache.pop(key_id, None)
        return True

    def count(self) -> int:
        with self.db.session() as s:
            return int(s.scalar(select(func.count()).select_from(ApiKeyRow)) or 0)
