"""Platform-managed keys of the LiteLLM proxy (`mlops llm keys`): the proxy's own virtual keys need
PostgreSQL plus Prisma engines downloaded from outside, so the platform issues its keys itself. A key is
kept as its SHA-256 only (keys are 256 random bits: a fast hash is enough), with an optional budget in USD
and the routes it may call; the proxy's hooks (proxy_hooks.py) check it on every call and add each call's
tokens and cost to it. One SQLite file, MLOPS_HOME/llm/keys.db (0600), shared by the CLI, the gateway
and the proxy process."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

KEYS_FILE = "llm/keys.db"
KEYS_ENV = "MLOPS_LLM_KEYS_DB"
"""The proxy process finds the key file here (it is started with it in its environment)."""
PREFIX = "sk-mlops-"
KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, created REAL NOT NULL,
    budget_usd REAL, models TEXT NOT NULL, revoked REAL, internal INTEGER NOT NULL DEFAULT 0,
    spend_usd REAL NOT NULL DEFAULT 0, prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0, requests INTEGER NOT NULL DEFAULT 0
)"""


class KeyRefused(Exception):
    """A key the proxy must refuse: `status` is the HTTP status to answer (401 unknown or revoked, 403
    over budget or a model it may not call)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class BadKeyInput(ValueError):
    """A key that cannot be created as asked; `field` is what to change (`name` or `budget_usd`)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class KeyInfo:
    """What is known of a key (never its value)."""

    id: str
    name: str
    created: float
    budget_usd: float | None
    models: list[str] = field(default_factory=list)
    revoked: float | None = None
    internal: bool = False
    spend_usd: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def keys_path(home: Path) -> Path:
    """The key file of MLOPS_HOME `home`."""
    return home / KEYS_FILE


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def _info(row: sqlite3.Row) -> KeyInfo:
    return KeyInfo(
        id=row["id"],
        name=row["name"],
        created=row["created"],
        budget_usd=row["budget_usd"],
        models=json.loads(row["models"]),
        revoked=row["revoked"],
        internal=bool(row["internal"]),
        spend_usd=row["spend_usd"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        requests=row["requests"],
    )


class VirtualKeys:
    """The key file at `path` (created 0600 on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        con = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            con.row_factory = sqlite3.Row
            con.execute("PRAGMA busy_timeout=10000")
            con.execute(_SCHEMA)
            yield con
        finally:
            con.close()

    def create(
        self,
        name: str,
        *,
        budget_usd: float | None = None,
        models: list[str] | None = None,
        internal: bool = False,
    ) -> tuple[KeyInfo, str]:
        """A new key: its info and its value (shown once; only its hash is kept). ValueError for a bad
        name or budget (BadKeyInput)."""
        if not KEY_NAME.fullmatch(name):
            raise BadKeyInput(f"key name {name!r}: use letters, digits and . _ - (at most 63)", "name")
        if budget_usd is not None and not budget_usd >= 0:
            raise BadKeyInput(f"budget {budget_usd!r} must be a number of USD >= 0", "budget_usd")
        value = PREFIX + secrets.token_urlsafe(32)
        info = KeyInfo("k" + secrets.token_hex(6), name, time.time(), budget_usd, list(models or []))
        info.internal = internal
        with self._db() as con:
            con.execute(
                "INSERT INTO keys (id, name, hash, created, budget_usd, models, internal) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (info.id, name, digest(value), info.created, budget_usd, json.dumps(info.models), internal),
            )
        return info, value

    def list(self, include_revoked: bool = True) -> list[KeyInfo]:
        """Every key, oldest first."""
        with self._db() as con:
            rows = con.execute("SELECT * FROM keys ORDER BY created").fetchall()
        infos = [_info(r) for r in rows]
        return [i for i in infos if include_revoked or i.revoked is None]

    def get(self, key_id: str) -> KeyInfo | None:
        with self._db() as con:
            row = con.execute("SELECT * FROM keys WHERE id = ?", (key_id,)).fetchone()
        return None if row is None else _info(row)

    def revoke(self, key_id: str) -> bool:
        """Revoke a key (refused by the proxy from its next call); False when there is no such live key."""
        with self._db() as con:
            cur = con.execute(
                "UPDATE keys SET revoked = ? WHERE id = ? AND revoked IS NULL", (time.time(), key_id)
            )
        return cur.rowcount == 1

    def check(self, value: str, model: str | None) -> KeyInfo:
        """The live key whose value is `value`, allowed to call `model` and within its budget; KeyRefused
        otherwise (the message never repeats the value)."""
        with self._db() as con:
            row = con.execute("SELECT * FROM keys WHERE hash = ?", (digest(value),)).fetchone()
        if row is None:
            raise KeyRefused("unknown key: use a key from `mlops llm keys create`", 401)
        info = _info(row)
        if info.revoked is not None:
            raise KeyRefused(f"key {info.id} ({info.name}) was revoked", 401)
        if info.budget_usd is not None and info.spend_usd >= info.budget_usd:
            raise KeyRefused(
                f"key {info.id} ({info.name}) spent {info.spend_usd:.6f} USD of its {info.budget_usd:g} "
                "USD budget: create a key with a larger budget",
                403,
            )
        if info.models and model is not None and model not in info.models:
            raise KeyRefused(
                f"key {info.id} ({info.name}) may not call {model!r} (allowed: {', '.join(info.models)})",
                403,
            )
        return info

    def record(self, key_id: str, prompt_tokens: int, completion_tokens: int, cost_usd: float) -> None:
        """Add one call's tokens and cost to key `key_id`."""
        with self._db() as con:
            con.execute(
                "UPDATE keys SET spend_usd = spend_usd + ?, prompt_tokens = prompt_tokens + ?, "
                "completion_tokens = completion_tokens + ?, requests = requests + 1 WHERE id = ?",
                (max(0.0, cost_usd), max(0, prompt_tokens), max(0, completion_tokens), key_id),
            )
