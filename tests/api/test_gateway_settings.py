"""Settings: the secret key, and refusing to listen beyond loopback without a strong one."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from collections.abc import Callable
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
    strong = Settings(mlops_home=tmp_path, host="0.0.0.0", secret_key=secrets.token_urlsafe(32))
    assert resolve_secret_key(strong)


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("k" * 8 + "x7Qp" * 8, "guessable"),  # 40 characters, but a repeated pattern
        ("a" * 64, "guessable"),
        ("0123456789" * 4, "guessable"),  # a sequence
        ("qwertyuiopasdfghjklzxcvbnm1234567890", "guessable"),  # a keyboard walk
        ("Tr0ub4dor&3Tr0ub4dor&3Tr0ub4dor&3", "guessable"),  # words, l33t, repeated
        ("mlops-nocode-production-key-2025-v1", "guessable"),  # hand-made from the project's words
        ("iloveyouiloveyou1234567812345678", "guessable"),
        ("changeme-changeme-changeme-changeme", "placeholder word 'changeme'"),
        ("this-is-my-super-SECRET-key-for-prod!", "placeholder word 'secret'"),
        ("your_password_goes_here_0123456789abc", "placeholder word 'password'"),
        ("django-insecure-x8#k2!pq9@m4z&l7w0e3r6t1y5u", "placeholder word 'insecure'"),
        ("09d25e094faa6ca2556c818166b7a9563b93f7099f6f0f4caa6cf63b88e8d3e7", "well-known"),  # FastAPI docs
        (" 09D25E094FAA6CA2556C818166B7A9563B93F7099F6F0F4CAA6CF63B88E8D3E7 ", "well-known"),
    ],
)
def test_a_long_but_weak_or_placeholder_key_is_refused_saying_why(tmp_path: Path, key: str, why: str) -> None:
    assert len(key.strip()) >= 32  # length alone would accept every one of them
    s = Settings(mlops_home=tmp_path, host="0.0.0.0", secret_key=key)
    with pytest.raises(SettingsError, match="SECRET_KEY is too weak") as refused:
        resolve_secret_key(s)
    assert why in str(refused.value) and "secrets.token_urlsafe" in str(refused.value)
    assert key not in str(refused.value)  # the refusal never repeats the key


@pytest.mark.parametrize(
    "make",
    [
        lambda: secrets.token_hex(16),  # 128 bits, the smallest random key accepted
        lambda: secrets.token_hex(32),
        lambda: secrets.token_urlsafe(24),
        lambda: secrets.token_urlsafe(48),  # what the error message suggests
        lambda: base64.b64encode(os.urandom(32)).decode(),  # openssl rand -base64 32
        lambda: secrets.token_urlsafe(200),  # longer than zxcvbn's 72 characters
    ],
)
def test_random_keys_are_accepted(tmp_path: Path, make: Callable[[], str]) -> None:
    for _ in range(10):
        key = make()
        s = Settings(mlops_home=tmp_path, host="0.0.0.0", secret_key=key)
        assert resolve_secret_key(s) == key


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
