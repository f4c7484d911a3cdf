"""Engine and sessions (SQLite in WAL mode by default, PostgreSQL through psycopg 3), and the Alembic
migrations applied at startup."""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeAlias

from sqlalchemy import Connection, Engine, Row, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK = 0x6D6C6F7073  # PostgreSQL advisory lock id serialising migrations across hosts
AnyRow: TypeAlias = Row[*tuple[Any, ...]]  # a Core result row, whatever its columns
READ_ONLY = "mlops_read_only"  # execution option of the connections `Database.read()` hands out


def normalize_url(url: str) -> str:
    """`postgres://` and `postgresql://` URLs use psycopg 3 (SQLAlchemy would pick psycopg2)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def dialect_of(url: str) -> str:
    """ "sqlite" or "postgresql" (anything else is refused)."""
    name = normalize_url(url).split(":", 1)[0].split("+", 1)[0]
    if name not in ("sqlite", "postgresql"):
        raise ValueError(f"DATABASE_URL: unsupported database {name!r}; use sqlite:/// or postgresql://")
    return name


class Database:
    """One engine and its session factory. `session()` is a transaction: committed, or rolled back."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        self.dialect = dialect_of(self.url)
        self.engine = make_engine(self.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._reader = self.engine.execution_options(**{READ_ONLY: True})

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction (SQLite: BEGIN IMMEDIATE, so writers queue instead of failing)."""
        with self._sessions() as s, s.begin():
            yield s

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A Core connection in one read-only transaction, for the hot read paths (no ORM objects).

        SQLite: a deferred BEGIN, so in WAL mode readers take no write lock and neither queue behind
        writers nor behind each other (every `session()` takes the write lock at BEGIN IMMEDIATE); the
        statements inside still see one snapshot. PostgreSQL: an ordinary transaction. Never write in it.
        """
        with self._reader.connect() as conn, conn.begin():
            yield conn

    def migrate(self, lock_dir: Path | None = None) -> None:
        """Bring the schema to the latest revision (idempotent; serialised across processes by a file lock,
        and on PostgreSQL across hosts by an advisory lock)."""
        import logging

        logging.getLogger("alembic").setLevel(logging.WARNING)  # before import: plugins log when loaded

        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        lock = (lock_dir / "migrate.lock") if lock_dir else None
        with _flock(lock), self.engine.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def close(self) -> None:
        self.engine.dispose()


@contextlib.contextmanager
def _flock(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def make_engine(url: str) -> Engine:
    """An engine; for SQLite: WAL journal, a busy timeout, foreign keys, and explicit BEGIN IMMEDIATE."""
    if not url.startswith("sqlite"):
        return create_engine(
            normalize_url(url), pool_pre_ping=True, pool_size=5, max_overflow=5, json_serializer=_json
        )
    # a pool as large as the threadpool serving requests (40 threads): SQLite connections are cheap, and
    # with the default 5 + 10 overflow, connections were opened and closed (PRAGMAs and all) under load
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=40, max_overflow=24
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy's "begin" below open transactions
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")

    return engine


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _json(value: Any) -> str:
    """JSON for PostgreSQL, which refuses NaN and Infinity (they become null)."""
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(value))
