"""The done-when run again with the S3-compatible store (moto's server on loopback): the "remote" Runner
has its own MLOPS_HOME, so the inputs it needs and the outputs it makes cross through the bucket only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import Server, wait_status
from tests.deploy.test_two_targets import DEP, PROVIDERS, PYPATH, docs, started_in
from tests.s3_support import MotoS3, s3server

__all__ = ["s3server"]


@pytest.fixture
def server(tmp_path: Path, s3server: MotoS3) -> Iterator[Server]:
    env = s3server.env("two-targets")
    s = Server(tmp_path / "home", POLL_SECONDS="0.1", PROVIDER_MODULES=PROVIDERS, PYTHONPATH=PYPATH,
               DEPLOYMENT_POLL_SECONDS="0.2", FAKE_REMOTE_HOME=str(tmp_path / "remote"), **env)  # fmt: skip
    s.start()
    yield s
    s.stop()


def test_two_machines_share_only_the_bucket(server: Server, tmp_path: Path) -> None:
    with server.client(server.admin_key) as admin:
        run_id = admin.post("/api/v1/runs", json={"pipeline": docs()}).json()["id"]
        assert wait_status(admin, run_id, timeout=120) == "succeeded", admin.get(
            f"/api/v1/runs/{run_id}"
        ).json()
        run = admin.get(f"/api/v1/runs/{run_id}").json()
        assert run["outputs"]["final"] == ["prep", "train", "report"]
        assert admin.get(f"/api/v1/runs/{run_id}/artifacts/trained").json() == ["prep", "train"]
    assert started_in(tmp_path / "remote" / "runs" / f"{run_id}.{DEP}") == ["train/hop"]
    assert not (server.home / "runs" / f"{run_id}.{DEP}").exists()
    assert "prep/hop" in started_in(server.home / "runs" / run_id)
