"""The gateway serves artifacts kept in the S3 store (a real moto server on loopback) as it serves local
ones: a run's outputs, once gone from the gateway's own disk (as those of a Runner on another machine
are), are listed, downloaded (files, folders as .tar.gz, values) and checked against their digests."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import Server, wait_status
from tests.api.test_gateway_artifacts import _docs
from tests.s3_support import MotoS3, s3server

__all__ = ["s3server"]


@pytest.fixture
def s3_gateway(tmp_path: Path, s3server: MotoS3) -> Iterator[Server]:
    server = Server(tmp_path / "gw-home", **s3server.env(f"gw-{uuid.uuid4().hex[:8]}"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_the_gateway_serves_artifacts_from_the_s3_store(s3_gateway: Server, s3server: MotoS3) -> None:
    with s3_gateway.client(s3_gateway.admin_key) as admin:
        run_id = admin.post("/api/v1/runs", json={"pipeline": _docs("s3arts")}).json()["id"]
        assert wait_status(admin, run_id) == "succeeded"
        shutil.rmtree(s3_gateway.home / "artifacts")  # only the bucket has them now
        listed = admin.get(f"/api/v1/runs/{run_id}/artifacts")
        assert listed.status_code == 200, listed.text
        by_name = {a["name"]: a for a in listed.json()}
        assert all(a["available"] for a in by_name.values()), by_name
        assert by_name["bundle"]["kind"] == "directory" and by_name["bundle"]["size"] == 2

        r = admin.get(f"/api/v1/runs/{run_id}/artifacts/report")
        assert r.status_code == 200 and r.content == b"hello artifact\n"
        r = admin.get(f"/api/v1/runs/{run_id}/artifacts/bundle")
        assert r.status_code == 200 and r.headers["content-type"] == "application/gzip"
        with tarfile.open(fileobj=io.BytesIO(r.content), mode="r:gz") as tar:
            files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
        assert files == {"bundle/a.txt": b"A", "bundle/sub/b.txt": b"B"}
        shutil.rmtree(s3_gateway.home / "artifacts")
        r = admin.get(f"/api/v1/runs/{run_id}/artifacts/info")
        assert r.status_code == 200 and json.loads(r.content) == {"k": 1}
        answers = listed.text + r.text + admin.get(f"/api/v1/runs/{run_id}").text
        assert s3server.secret_key not in answers and s3server.access_key not in answers
    log = s3_gateway.log.read_text()
    assert s3server.secret_key not in log and s3server.access_key not in log
