"""The read paths' caches (runs.keys, runs.service) on SQLite and PostgreSQL: what they may and may not
serve from memory. The clock is moved by patching `time.monotonic`, never waited on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlops_nocode.runs import keys as keys_module
from mlops_nocode.runs.db import Database
from mlops_nocode.runs.keys import CACHE_SECONDS, KeyStore
from mlops_nocode.runs.service import RunService
from tests.api.conftest import NewDb


def _database(tmp_path: Path, new_db: NewDb) -> Database:
    db = Database(new_db().get("DATABASE_URL", f"sqlite:///{tmp_path / 'mlops.db'}"))
    db.migrate(tmp_path)
    return db


def _inline(name: str) -> list[dict[str, Any]]:
    playbook = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Playbook",
        "metadata": {"name": f"{name}-noop", "version": "1.0.0"},
        "spec": {"runtime": "command", "command": {"argv": ["true"]}},
    }
    steps = [{"id": s, "uses": f"playbook/{name}-noop"} for s in ("a", "b")]
    pipeline = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Pipeline",
        "metadata": {"name": name, "version": "1.0.0"},
        "spec": {
            "parameters": {
                "type": "object",
                "properties": {"n": {"type": "integer"}, "nested": {"type": "object"}},
            },
            "steps": steps,
        },
    }
    return [playbook, pipeline]


def test_key_cache_revocation_and_bounded_staleness(
    tmp_path: Path, new_db: NewDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = _database(tmp_path, new_db)
    try:
        here, elsewhere = KeyStore(db), KeyStore(db)  # two processes' stores over one database
        key, token = here.create("ci", ["read"])
        wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        assert here.check(token) == key and here.in_memory(token)
        assert here.check(wrong) is None  # a wrong secret is refused from the cache too
        assert not here.in_memory("mlk_nosuchkey_x") and here.check("mlk_nosuchkey_x") is None

        assert elsewhere.check(token) == key
        assert here.revoke(key.id)  # revoked through this store: refused at once
        assert here.check(token) is None
        got = here.get(key.id)
        assert got is not None and got.revoked_at is not None

        # revoked by another process: accepted at most CACHE_SECONDS longer, then refused
        assert elsewhere.check(token) == key
        real = keys_module.time.monotonic
        monkeypatch.setattr(keys_module.time, "monotonic", lambda: real() + CACHE_SECONDS + 0.01)
        assert elsewhere.check(token) is None
    finally:
        db.close()


def test_cached_step_ids_and_core_reads_match_the_orm_view(tmp_path: Path, new_db: NewDb) -> None:
    db = _database(tmp_path, new_db)
    try:
        writer = RunService(db)
        created = [
            writer.create(_inline(f"p{i}"), {"n": i, "nested": {"x": [1, None]}}, target)
            for i, target in enumerate([None, {"provider": "local"}, None])
        ]
        reader = RunService(db)  # another process: nothing cached yet
        for service in (reader, reader, writer):  # cold, then warm caches; and the creating service
            one = service.get(created[0]["id"])
            assert one == created[0] and one["steps"] == ["a", "b"]
            items, total = service.list_runs(limit=2)
            assert total == 3 and [r["id"] for r in items] == [r["id"] for r in created[::-1][:2]]
            assert items == created[::-1][:2]
            only, n = service.list_runs(pipeline="pipeline/p1", status="queued")
            assert n == 1 and only == [created[1]]
        first = reader.list_runs(limit=1)[0][0]
        first["steps"].append("mutated")
        first["parameters"]["n"] = -1
        assert reader.get(first["id"]) == created[-1]  # callers' changes never reach the cache
    finally:
        db.close()
