"""The database layer on SQLite and PostgreSQL: migrations, concurrent claims, URL handling."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import inspect

from mlops_nocode.runs.db import Database, dialect_of, normalize_url
from mlops_nocode.runs.models import RunRow
from mlops_nocode.runs.service import RunService
from tests.api import pgcluster
from tests.api.conftest import NewDb


def _database(tmp_path: Path, new_db: NewDb) -> Database:
    url = new_db().get("DATABASE_URL", f"sqlite:///{tmp_path / 'mlops.db'}")
    db = Database(url)
    db.migrate(tmp_path)
    db.migrate(tmp_path)  # idempotent
    return db


def test_migration_and_concurrent_claims_take_each_run_once(tmp_path: Path, new_db: NewDb) -> None:
    db = _database(tmp_path, new_db)
    try:
        assert {"runs", "run_events", "api_keys", "alembic_version"} <= set(
            inspect(db.engine).get_table_names()
        )
        service = RunService(db)
        now = time.time()
        with db.session() as s:
            for i in range(40):
                s.add(
                    RunRow(
                        id=f"r{i:03d}",
                        pipeline="p",
                        plan={"steps": []},
                        parameters={},
                        status="queued",
                        created_at=now + i,
                        attempts=0,
                        cancel_requested=False,
                    )
                )
        claimed: list[str] = []
        lock = threading.Lock()

        def work(n: int) -> None:
            while (run := service.claim(f"w{n}")) is not None:
                with lock:
                    claimed.append(run["id"])

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(claimed) == [f"r{i:03d}" for i in range(40)]
        assert service.list_runs(status="running", limit=100)[1] == 40
        # NaN cannot be stored as JSON by PostgreSQL: it becomes null there
        service.finish("r000", service.get("r000")["worker_id"], "succeeded", None, {"x": float("nan")})
        assert service.get("r000")["status"] == "succeeded"
    finally:
        db.close()


def test_urls() -> None:
    assert normalize_url("postgres://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert dialect_of("postgresql+psycopg://h/db") == "postgresql"
    assert dialect_of("sqlite:////tmp/x.db") == "sqlite"
    with pytest.raises(ValueError, match="unsupported"):
        dialect_of("mysql://h/db")


def test_missing_postgres_binaries_name_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pgcluster.shutil, "which", lambda name: None)
    monkeypatch.setattr(pgcluster.glob, "glob", lambda pattern: [])
    with pytest.raises(pgcluster.PostgresUnavailable, match="apt-get install -y postgresql"):
        pgcluster.find_binaries()
