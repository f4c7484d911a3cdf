"""The credentials the local monitoring stack sends to the gateway, each in a 0600 file under
MLOPS_HOME/monitoring/: a read-scoped key for Prometheus's scrapes of `/metrics` and a write-scoped one
for Alertmanager's posts to `/api/v1/alerts`, both created on the gateway's database when this
MLOPS_HOME holds it, and revoked (and their files deleted) by `down`. A key file the user gives
(`--key-file`) is used as it is for both, and never deleted."""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_nocode.settings import Settings, write_private
from mlops_nocode.spec import Problem, SpecError

if TYPE_CHECKING:
    from mlops_nocode.runs.db import Database

PROMETHEUS_KEY = "prometheus.key"
ALERTMANAGER_KEY = "alertmanager.key"
KEY_NAMES = {
    PROMETHEUS_KEY: ("monitoring-prometheus", "read"),
    ALERTMANAGER_KEY: ("monitoring-alertmanager", "write"),
}
MAX_KEY_BYTES = 4096
CREATE_FIX = (
    "give a key of the gateway with --key-file FILE (`mlops keys create prometheus --scope write > FILE`)"
)


@dataclass
class Credentials:
    """The file Prometheus reads its bearer credential from, the one Alertmanager reads, the key ids
    created for them (to revoke) and the files written for them (to delete)."""

    prometheus: Path
    alertmanager: Path
    key_ids: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)

    def token(self) -> str:
        """The scrape credential (to check it against the gateway; never printed)."""
        return self.prometheus.read_text(encoding="utf-8").strip()


def given(path: Path) -> Credentials:
    """A key file the user gives: it must be a readable regular file holding one token."""
    where = "--key-file"
    try:
        info = path.stat()
        text = path.read_text(encoding="utf-8") if stat.S_ISREG(info.st_mode) else None
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(
            Problem(f"cannot read the key file {path}: {e}", where, "give a readable file")
        ) from None
    if text is None or info.st_size > MAX_KEY_BYTES or not text.strip() or len(text.strip().split()) != 1:
        raise SpecError(
            Problem(f"{path} does not hold one API key", where, "write only the key in it (mlk_...)")
        )
    path = path.absolute()
    return Credentials(path, path)


def _database(settings: Settings) -> Database | None:
    """The gateway's database when this MLOPS_HOME (or DATABASE_URL) holds it, else None."""
    if settings.database_url is None and not (settings.home / "mlops.db").is_file():
        return None
    from mlops_nocode.runs.db import Database

    return Database(settings.db_url)


def create(folder: Path, settings: Settings) -> Credentials:
    """New keys on the gateway's database, written to 0600 files in `folder`; SpecError when this
    MLOPS_HOME has no gateway database (or it cannot be written). Nothing is left when it fails."""
    from sqlalchemy.exc import SQLAlchemyError

    from mlops_nocode.runs.keys import KeyStore

    where = "DATABASE_URL" if settings.database_url else str(settings.home / "mlops.db")
    creds = Credentials(folder / PROMETHEUS_KEY, folder / ALERTMANAGER_KEY)
    try:
        db = _database(settings)
        if db is None:
            raise SpecError(
                Problem("this MLOPS_HOME holds no gateway database to create a key in", where, CREATE_FIX)
            )
        try:
            store = KeyStore(db, cache_seconds=0)
            for file, (name, scope) in KEY_NAMES.items():
                key, value = store.create(name, [scope])
                creds.key_ids.append(key.id)
                creds.written.append(folder / file)
                write_private(folder / file, value)
        finally:
            db.close()
    except (ValueError, SQLAlchemyError, OSError) as e:
        forget(settings, creds.key_ids, creds.written)
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SpecError(Problem(f"cannot create the monitoring keys: {reason}", where, CREATE_FIX)) from None
    return creds


def forget(settings: Settings, key_ids: list[str], files: list[str] | list[Path]) -> list[str]:
    """Revoke the keys created for the stack and delete their files; the ids that could not be revoked."""
    for f in files:
        with contextlib.suppress(OSError):
            os.unlink(f)
    if not key_ids:
        return []
    from sqlalchemy.exc import SQLAlchemyError

    from mlops_nocode.runs.keys import KeyStore

    left = list(key_ids)
    with contextlib.suppress(ValueError, SQLAlchemyError, OSError):
        db = _database(settings)
        if db is not None:
            try:
                store = KeyStore(db, cache_seconds=0)
                for key_id in key_ids:
                    store.revoke(key_id)
                    left.remove(key_id)
            finally:
                db.close()
    return left
