"""The last admin key cannot be revoked (API and CLI, also under concurrent revocations, on SQLite and
PostgreSQL), and `mlops keys list|create|revoke` manages keys on the database, gateway running or not."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest

from mlops_nocode.runs.db import Database
from mlops_nocode.runs.keys import KeyStore, LastAdminKey
from tests.api.conftest import NewDb, Server


def _race(calls: list[Callable[[], object]]) -> list[object]:
    """Run the calls in threads released at the same moment; their results (or exceptions), in order."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except Exception as e:
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def _revoke_code(client: httpx.Client, key_id: str) -> int:
    return client.delete(f"/api/v1/keys/{key_id}").status_code


def _live_admins(admin: httpx.Client) -> list[str]:
    keys = admin.get("/api/v1/keys").json()
    return [k["id"] for k in keys if "admin" in k["scopes"] and k["revoked_at"] is None]


def test_the_last_admin_key_cannot_be_revoked(server: Server, admin: httpx.Client) -> None:
    [first] = _live_admins(admin)
    r = admin.delete(f"/api/v1/keys/{first}")
    assert r.status_code == 409, r.text
    assert "last live admin key" in r.json()["detail"] and "mlops keys create --admin" in r.json()["detail"]
    assert admin.get("/api/v1/keys").status_code == 200  # still works
    second = admin.post("/api/v1/keys", json={"name": "second-admin", "scopes": ["admin"]}).json()
    with server.client(second["key"]) as other:
        assert other.delete(f"/api/v1/keys/{second['id']}").status_code == 200  # one of two: fine
        assert other.get("/api/v1/keys").status_code == 401
    assert admin.delete(f"/api/v1/keys/{first}").status_code == 409  # the last one again
    reader = admin.post("/api/v1/keys", json={"name": "reader", "scopes": ["read"]}).json()
    assert admin.delete(f"/api/v1/keys/{reader['id']}").status_code == 200  # other keys: always
    assert _live_admins(admin) == [first]


@pytest.fixture
def db_url(tmp_path: Path, new_db: NewDb) -> str:
    return new_db().get("DATABASE_URL") or f"sqlite:///{tmp_path / 'keys.db'}"


def test_concurrent_revocations_never_revoke_the_last_two_admin_keys(db_url: str, tmp_path: Path) -> None:
    """Two key stores on two engines (two gateway processes) revoke the last two admin keys at the same
    moment, round after round: one succeeds, the other is refused."""
    dbs = [Database(db_url), Database(db_url)]
    dbs[0].migrate(tmp_path)
    stores = [KeyStore(db) for db in dbs]
    pair = [stores[0].create("a0", ["admin"])[0].id, stores[0].create("b0", ["admin"])[0].id]
    try:
        for round_ in range(15):
            first, second = _race([partial(stores[i].revoke, pair[i]) for i in (0, 1)])
            outcome = {pair[0]: first, pair[1]: second}
            assert sorted(map(repr, outcome.values()))[-1] == "True", (round_, outcome)
            assert sum(isinstance(v, LastAdminKey) for v in outcome.values()) == 1, (round_, outcome)
            live = [k for k in stores[0].list() if "admin" in k.scopes and k.revoked_at is None]
            assert [k.id for k in live] == [k for k, v in outcome.items() if isinstance(v, LastAdminKey)]
            pair = [live[0].id, stores[1].create(f"n{round_}", ["admin"])[0].id]
    finally:
        for db in dbs:
            db.close()


def test_concurrent_revocations_through_the_gateway(tmp_path: Path, new_db: NewDb) -> None:
    """Two admin keys revoke each other at the same moment through the live gateway: never both."""
    s = Server(tmp_path / "home", **new_db())
    s.start()
    try:
        with s.client(s.admin_key) as first:
            keys = [(first.get("/api/v1/auth/whoami").json()["key_id"], s.admin_key)]
            made = first.post("/api/v1/keys", json={"name": "peer", "scopes": ["admin"]}).json()
        keys.append((made["id"], made["key"]))
        for round_ in range(5):
            clients = [s.client(keys[i][1]) for i in (0, 1)]
            codes = _race([partial(_revoke_code, clients[i], keys[1 - i][0]) for i in (0, 1)])
            for c in clients:
                c.close()
            assert sorted(codes) in ([200, 401], [200, 409]), (round_, codes)
            survivor = keys[codes.index(200)]
            with s.client(survivor[1]) as c:
                assert _live_admins(c) == [survivor[0]]
                made = c.post("/api/v1/keys", json={"name": f"peer{round_}", "scopes": ["admin"]}).json()
            keys = [survivor, (made["id"], made["key"])]
    finally:
        s.stop()


def _mlops(server: Server, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlops_nocode.cli.main", "keys", *args],
        env={**server.env, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _wait_refused(server: Server, key: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    with server.client(key) as c:
        while c.get("/api/v1/runs").status_code != 401:
            assert time.monotonic() < deadline, "the gateway still accepts a revoked key"
            time.sleep(0.1)


@pytest.fixture
def fresh(tmp_path: Path, new_db: NewDb) -> Iterator[Server]:
    s = Server(tmp_path / "home", **new_db())
    s.start()
    yield s
    s.stop()


def test_mlops_keys_manages_keys_on_the_database_with_the_gateway_running(fresh: Server) -> None:
    listed = _mlops(fresh, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [first] = json.loads(listed.stdout)
    assert first["name"] == "admin" and first["scopes"] == ["admin"] and fresh.admin_key not in listed.stdout
    created = _mlops(fresh, "create", "ci", "--scope", "write")
    assert created.returncode == 0, created.stderr
    value = created.stdout.strip()
    assert value.startswith("mlk_") and value not in created.stderr and "created key" in created.stderr
    with fresh.client(value) as ci:  # the running gateway knows it at once
        assert ci.get("/api/v1/runs").status_code == 200
        assert ci.get("/api/v1/keys").status_code == 403
        key_id = ci.get("/api/v1/auth/whoami").json()["key_id"]
    table = _mlops(fresh, "list")
    assert table.returncode == 0 and "ci" in table.stdout and "write" in table.stdout, table.stdout
    revoked = _mlops(fresh, "revoke", key_id, "--json")
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(revoked.stdout)["revoked_at"] is not None
    _wait_refused(fresh, value)
    last = _mlops(fresh, "revoke", first["id"])
    assert last.returncode == 2, last.stderr
    assert "last live admin key" in last.stderr and "mlops keys create --admin" in last.stderr
    with fresh.client(fresh.admin_key) as admin:
        assert admin.get("/api/v1/keys").status_code == 200
    again = _mlops(fresh, "revoke", key_id)
    assert again.returncode == 2 and "no live key" in again.stderr
    for bad, where in [(["create", "x"], "--scope"), (["create", "no/slash", "--admin"], "NAME")]:
        r = _mlops(fresh, *bad)
        assert r.returncode == 2 and where in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_a_lost_admin_key_is_recovered_from_mlops_home_with_the_gateway_stopped(fresh: Server) -> None:
    old = fresh.admin_key
    (fresh.home / "credentials.json").unlink()  # the only copy of the admin key is gone
    fresh.stop()
    created = _mlops(fresh, "create", "--admin", "--json")
    assert created.returncode == 0, created.stderr
    new = json.loads(created.stdout)
    assert new["name"] == "admin" and new["scopes"] == ["admin"]
    fresh.start()
    with fresh.client(new["key"]) as admin:
        assert admin.get("/api/v1/auth/whoami").json()["scopes"] == ["admin", "read", "write"]
        old_id = old.split("_")[1]
        assert admin.delete(f"/api/v1/keys/{old_id}").status_code == 200  # two admins: may revoke one
    # through the gateway's API instead of the database (MLOPS_URL and MLOPS_TOKEN)
    remote = {"MLOPS_URL": fresh.url, "MLOPS_TOKEN": new["key"]}
    listed = _mlops(fresh, "list", "--remote", "--json", env=remote)
    assert listed.returncode == 0, listed.stderr
    assert {k["id"] for k in json.loads(listed.stdout)} >= {new["id"], old_id}
    made = _mlops(fresh, "create", "bot", "-s", "read", "--remote", "--json", env=remote)
    assert made.returncode == 0 and json.loads(made.stdout)["scopes"] == ["read"], made.stderr
    last = _mlops(fresh, "revoke", new["id"], "--remote", env=remote)
    assert last.returncode == 2 and "last live admin key" in last.stderr, last.stderr
    assert "mlops keys create --admin" in last.stderr
