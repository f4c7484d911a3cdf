"""Secrets kept by the gateway, encrypted at rest.

Values are encrypted with Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) under a key derived
from SECRET_KEY with HKDF-SHA256, so the database alone never reveals them. Only names and times are ever
listed; values leave the store only for the worker that runs a step referencing them.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select

from mlops_nocode.runs.db import Database
from mlops_nocode.runs.models import SecretRow
from mlops_nocode.runtime.secrets import value_problem

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,99}$")  # what `${{ secrets.NAME }}` accepts
HKDF_INFO = b"mlops-nocode secrets v1"


class SecretRefused(ValueError):
    """A value no step could be given (NUL, too long) or that could not be redacted (too short)."""

    def __init__(self, what: str, fix: str) -> None:
        super().__init__(what)
        self.what, self.fix = what, fix


class SecretUnreadable(ValueError):
    """A stored secret cannot be decrypted (SECRET_KEY changed since it was set)."""


def derive_key(secret_key: str) -> bytes:
    """The Fernet key for SECRET_KEY: HKDF-SHA256 (no salt, a fixed purpose label), base64url."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(secret_key.encode())
    return base64.urlsafe_b64encode(raw)


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """What may be shown about a secret: its name and when it was set."""

    name: str
    created_at: float
    updated_at: float

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "created_at": self.created_at, "updated_at": self.updated_at}


def check_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise ValueError(
            "a secret name starts with a letter or _ and has only letters, digits, _ and - (at most 100)"
        )


class SecretStore:
    """Set, list, delete secrets; decrypt the ones a run needs."""

    def __init__(self, db: Database, secret_key: str) -> None:
        self.db = db
        self._fernet = Fernet(derive_key(secret_key))

    def seal(self, value: str) -> str:
        """Encrypt a value kept elsewhere (webhook signing secrets)."""
        return self._fernet.encrypt(value.encode()).decode()

    def unseal(self, token: str) -> str:
        """Decrypt what `seal` returned (SecretUnreadable when SECRET_KEY changed)."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretUnreadable("cannot decrypt: SECRET_KEY changed since this was stored") from None

    def put(self, name: str, value: str) -> tuple[SecretInfo, bool]:
        """Set (or replace) a secret; returns what may be shown and whether it is new. SecretRefused for
        a value no step could be given or that could not be redacted (see runtime.secrets)."""
        check_name(name)
        if problem := value_problem(name, value):
            raise SecretRefused(*problem)
        token = self._fernet.encrypt(value.encode()).decode()
        now = time.time()
        with self.db.session() as s:
            row = s.get(SecretRow, name, with_for_update=True)
            created = row is None
            if row is None:
                row = SecretRow(name=name, ciphertext=token, created_at=now, updated_at=now)
                s.add(row)
            else:
                row.ciphertext, row.updated_at = token, now
            return SecretInfo(row.name, row.created_at, row.updated_at), created

    def infos(self) -> list[SecretInfo]:
        """Every secret by name (never values)."""
        with self.db.session() as s:
            rows = s.scalars(select(SecretRow).order_by(SecretRow.name))
            return [SecretInfo(r.name, r.created_at, r.updated_at) for r in rows]

    def delete(self, name: str) -> bool:
        with self.db.session() as s:
            row = s.get(SecretRow, name)
            if row is None:
                return False
            s.delete(row)
            return True

    def values(self, names: Iterable[str]) -> dict[str, str]:
        """The decrypted values of those of `names` that are set (the Runner reports missing ones)."""
        wanted = sorted(set(names))
        if not wanted:
            return {}
        query = select(SecretRow.name, SecretRow.ciphertext).where(SecretRow.name.in_(wanted))
        with self.db.read() as c:  # takes no write lock: callable while another session writes
            rows = c.execute(query).all()
        out: dict[str, str] = {}
        for row in rows:
            try:
                out[row.name] = self._fernet.decrypt(row.ciphertext.encode()).decode()
            except InvalidToken:
                raise SecretUnreadable(
                    f"secret {row.name!r} cannot be decrypted: SECRET_KEY changed since it was set; "
                    "set it again (PUT /api/v1/secrets/NAME)"
                ) from None
        return out
