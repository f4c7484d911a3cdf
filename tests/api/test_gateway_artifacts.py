"""Artifact listing and downloads (files, directories as .tar.gz, values), path-traversal safe."""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlops_nocode.runs.artifacts import ArtifactMissing, locate
from tests.api.conftest import Server, wait_status


def _docs(name: str) -> list[dict[str, Any]]:
    """A command step writing a file, a directory with a nested file, and a JSON value."""
    code = (
        "import sys, os, json; open(sys.argv[1], 'w').write('hello artifact\\n'); "
        "os.makedirs(os.path.join(sys.argv[2], 'sub')); "
        "open(os.path.join(sys.argv[2], 'a.txt'), 'w').write('A'); "
        "open(os.path.join(sys.argv[2], 'sub', 'b.txt'), 'w').write('B'); "
        "open(sys.argv[3], 'w').write(json.dumps({'k': 1}))"
    )
    playbook = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Playbook",
        "metadata": {"name": f"{name}-make", "version": "1.0.0"},
        "spec": {
            "runtime": "command",
            "command": {
                "argv": [
                    sys.executable,
                    "-c",
                    code,
                    "${{ outputs.report }}",
                    "${{ outputs.bundle }}",
                    "${{ outputs.info }}",
                ],
                "outputs": {"report": "report.txt", "bundle": "bundle", "info": "info.json"},
            },
            "outputs": {
                "report": {"type": "file"},
                "bundle": {"type": "directory"},
                "info": {"type": "json"},
            },
        },
    }
    pipeline = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Pipeline",
        "metadata": {"name": name, "version": "1.0.0"},
        "spec": {
            "steps": [{"id": "make", "uses": f"playbook/{name}-make"}],
            "outputs": {"report": "make.report", "bundle": "make.bundle", "info": "make.info"},
        },
    }
    return [playbook, pipeline]


def test_list_and_download_artifacts(server: Server, admin: httpx.Client) -> None:
    run_id = admin.post("/api/v1/runs", json={"pipeline": _docs("arts")}).json()["id"]
    assert wait_status(admin, run_id) == "succeeded"
    listed = admin.get(f"/api/v1/runs/{run_id}/artifacts")
    assert listed.status_code == 200, listed.text
    by_name = {a["name"]: a for a in listed.json()}
    assert set(by_name) == {"report", "bundle", "info"}
    assert str(server.home) not in listed.text  # no server paths
    report = by_name["report"]
    assert report["type"] == "file" and report["kind"] == "file" and report["available"]
    assert report["digest"] == hashlib.sha256(b"hello artifact\n").hexdigest()
    assert by_name["bundle"]["kind"] == "directory" and by_name["bundle"]["filename"] == "bundle.tar.gz"
    assert by_name["bundle"]["size"] == 2

    r = admin.get(f"/api/v1/runs/{run_id}/artifacts/report")
    assert r.status_code == 200 and r.content == b"hello artifact\n"
    assert "report.txt" in r.headers["content-disposition"]
    assert r.headers["x-artifact-digest"] == f"sha256:{report['digest']}"

    r = admin.get(f"/api/v1/runs/{run_id}/artifacts/bundle")
    assert r.status_code == 200 and r.headers["content-type"] == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(r.content), mode="r:gz") as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    assert files == {"bundle/a.txt": b"A", "bundle/sub/b.txt": b"B"}

    r = admin.get(f"/api/v1/runs/{run_id}/artifacts/info")
    assert r.status_code == 200 and json.loads(r.content) == {"k": 1}


def test_artifact_names_cannot_escape(server: Server, admin: httpx.Client) -> None:
    run_id = admin.post("/api/v1/runs", json={"pipeline": _docs("arts-esc")}).json()["id"]
    assert wait_status(admin, run_id) == "succeeded"
    for name in ("..%2F..%2Fsecret_key", "%2Fetc%2Fpasswd", "%2E%2E", "report%2F..%2F..%2Fcredentials.json"):
        r = admin.get(f"/api/v1/runs/{run_id}/artifacts/{name}")
        assert r.status_code == 404, (name, r.status_code)
        assert b"mlk_" not in r.content and b"root:" not in r.content
    r = admin.get(f"/api/v1/runs/{run_id}/artifacts/../../keys")
    assert r.status_code in (403, 404) and "mlk_" not in r.text
    assert admin.get("/api/v1/runs/nope/artifacts").status_code == 404
    assert admin.get("/api/v1/runs/nope/artifacts/report").status_code == 404
    reader = admin.post("/api/v1/keys", json={"name": "art-reader", "scopes": ["read"]}).json()["key"]
    with server.client(reader) as c:
        assert c.get(f"/api/v1/runs/{run_id}/artifacts/report").status_code == 200


def test_recorded_paths_outside_the_store_are_refused(tmp_path: Path) -> None:
    store = tmp_path / "artifacts"
    (store / "ab").mkdir(parents=True)
    (store / "ab" / "ok.txt").write_text("ok")
    (tmp_path / "secret_key").write_text("k")
    (store / "ab" / "link").symlink_to(tmp_path / "secret_key")
    assert locate(tmp_path, {"path": str(store / "ab" / "ok.txt")}).name == "ok.txt"
    for bad in ("/etc/passwd", str(store / ".." / "secret_key"), str(store / "ab" / "link"), str(store), ""):
        with pytest.raises(ArtifactMissing):
            locate(tmp_path, {"path": bad})
