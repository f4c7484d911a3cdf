"""Settings: the secret key, and refusing to listen beyond loopback without a strong one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlops_nocode.settings import Settings, SettingsError, resolve_secret_key
from tests.api.conftest import NewDb, Server, sleeper, wait_status


def test_generated_key_is_kept(tmp_path: Path) -> None:
    s = Settings(mlops_home=tmp_path, host="127.0.0.1")
    first = resolve_secret_key(s)
    assert resolve_secret_key(s) == first and len(first) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("key", [None, "changeme", "short"])
def test_refuses_non_loopback_without_strong_key(tmp_path: Path, key: str | None) -> None:
    s = Settings(mlops_home=tmp_path, host="0.0.0.0", secret_key=key)
    with pytest.raises(SettingsError, match="SECRET_KEY"):
        resolve_secret_key(s)
    strong = Settings(mlops_home=tmp_path, host="0.0.0.0", secret_key="k" * 8 + "x7Qp" * 8)
    assert resolve_secret_key(strong)


def test_up_refuses_to_bind_beyond_loopback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mlops_nocode.cli.main", "up", "--host", "0.0.0.0", "--port", "1"],
        env={"MLOPS_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "SECRET_KEY": "changeme"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "SECRET_KEY" in proc.stderr


def test_standalone_worker_process_runs_queued_work(tmp_path: Path, new_db: NewDb) -> None:
    server = Server(tmp_path / "home", WORKERS="0", POLL_SECONDS="0.1", **new_db())
    server.start()
    worker = subprocess.Popen(
        [sys.executable, "-m", "mlops_nocode.cli.main", "worker", "--threads", "2"],
        env={**server.env, "POLL_SECONDS": "0.1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with server.client(server.admin_key) as c:
            ids = [
                c.post("/pipelines/deploy", json={"pipeline": sleeper(f"w{i}", [("a", 0.2)])}).json()[
                    "pipeline_id"
                ]
                for i in range(3)
            ]
            assert c.get(f"/pipelines/{ids[0]}/status").json()["status"] in ("queued", "running")
            assert all(wait_status(c, i, 60) == "succeeded" for i in ids)
            workers = {c.get(f"/api/v1/runs/{i}").json()["worker_id"] for i in ids}
            assert all(w and f":{worker.pid}:" in w for w in workers)
    finally:
        worker.terminate()
        worker.wait(20)
        server.stop()
