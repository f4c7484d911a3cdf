"""The S3 artifact store against a real S3-compatible server on loopback (moto's server, authenticated):
the interface it shares with the local store, digests, multipart, hostile manifests, errors without
secrets, the shared cache index and waiting for a step result produced elsewhere."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import pytest

from mlops_nocode.runtime.limits import OutputLimits
from mlops_nocode.runtime.s3store import S3Store, StoreError, StoreSettings
from mlops_nocode.runtime.shared import SharedArtifacts
from mlops_nocode.runtime.state import Cancelled
from mlops_nocode.runtime.store import Artifacts, ArtifactStore, Ref, hash_path
from tests.s3_support import BUCKET, MotoS3, s3server

__all__ = ["s3server"]
MiB = 1 << 20


def _store(server: MotoS3, **over: str) -> S3Store:
    env = server.env(f"t-{uuid.uuid4().hex[:8]}")
    fields = {k[len("ARTIFACT_STORE_") :].lower(): v for k, v in env.items()}
    return S3Store(StoreSettings(**(fields | over)))  # type: ignore[arg-type]


def _tree(root: Path) -> Path:
    d = root / "bundle"
    (d / "sub" / "deeper").mkdir(parents=True)
    (d / "empty").mkdir()
    (d / "a.txt").write_text("A")
    (d / "sub" / "b.bin").write_bytes(bytes(range(256)) * 10)
    return d


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_both_stores_share_one_interface_and_the_same_digests(
    kind: str, s3server: MotoS3, tmp_path: Path
) -> None:
    store: Artifacts = _store(s3server) if kind == "s3" else ArtifactStore(tmp_path / "store")
    src = tmp_path / "src"
    src.mkdir()
    file = src / "model.pkl"
    file.write_bytes(b"weights" * 1000)
    folder = _tree(src)
    for path in (file, folder):
        digest = hash_path(path)
        ref = store.put_path(path, digest)
        assert ref == Ref(digest, path.name) and store.exists(ref)
        out = tmp_path / f"out-{kind}-{path.name}"
        out.mkdir()
        got = store.get(ref, out)
        assert got == out / path.name and hash_path(got) == digest
        assert store.size(ref) == (7000 if path is file else 1 + 2560)
    assert (out / "bundle" / "empty").is_dir()  # folders, even empty ones, come back
    with store.open(Ref(hash_path(folder), "bundle"), "sub/b.bin") as f:
        assert f.read() == bytes(range(256)) * 10
    assert not store.exists(Ref("0" * 64, "nothing"))


def test_a_big_file_goes_up_in_parts_and_comes_back_whole(s3server: MotoS3, tmp_path: Path) -> None:
    store = _store(s3server, multipart_threshold="5MiB", multipart_chunk="5MiB")
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        for i in range(12):
            f.write(bytes([i]) * MiB)
    ref = store.put_path(big, hash_path(big))
    head = s3server.client().head_object(Bucket=BUCKET, Key=store._data_key(ref))
    assert head["ETag"].strip('"').endswith("-3")  # a multipart upload's ETag counts its parts
    out = tmp_path / "out"
    out.mkdir()
    assert hash_path(store.get(ref, out)) == ref.digest


def test_bad_credentials_are_a_located_error_without_the_secret(s3server: MotoS3, tmp_path: Path) -> None:
    wrong = "WrongSecret-" + uuid.uuid4().hex
    store = _store(s3server, secret_key=wrong)
    f = tmp_path / "x.txt"
    f.write_text("x")
    with pytest.raises(StoreError) as info:
        store.put_path(f, hash_path(f))
    text = str(info.value)
    assert "refused the credentials" in text and f"s3://{BUCKET}/" in text
    assert "ARTIFACT_STORE_SECRET_KEY" in info.value.problem.fix
    assert wrong not in text and s3server.access_key not in text and s3server.secret_key not in text
    assert wrong not in repr(store.settings) and wrong not in str(store.settings.model_dump())


def test_an_unreachable_endpoint_fails_fast_with_a_clear_error(tmp_path: Path) -> None:
    store = S3Store(
        StoreSettings(
            url="s3://bucket/p", endpoint="http://127.0.0.1:9", access_key="k", secret_key="s",  # type: ignore[arg-type]
            connect_timeout=1, attempts=1,
        )
    )  # fmt: skip
    with pytest.raises(StoreError, match=r"does not answer at http://127\.0\.0\.1:9"):
        store.exists(Ref("0" * 64, "x"))  # the connect timeout ends it (the test's timeout guards hangs)


@pytest.mark.parametrize(
    "url",
    ["bucket/p", "s3://B/p", "s3://ab/p", "s3://bucket/../x", "http://bucket/p", "s3://bucket/p?x=1"],
)
def test_bad_urls_are_refused_with_the_setting_named(url: str) -> None:
    with pytest.raises(StoreError) as info:
        S3Store(StoreSettings(url=url))
    assert info.value.problem.where == "ARTIFACT_STORE_URL"


def test_credentials_in_the_endpoint_are_refused() -> None:
    with pytest.raises(StoreError, match="without credentials"):
        S3Store(StoreSettings(url="s3://bucket/p", endpoint="https://key:secret@sos.example"))


@pytest.mark.parametrize(
    "manifest",
    [
        {"kind": "directory", "size": 1, "files": [["../escape", 1]], "dirs": []},
        {"kind": "directory", "size": 1, "files": [["/etc/passwd", 1]], "dirs": []},
        {"kind": "directory", "size": 1, "files": [["a", 1]], "dirs": ["x/../../y"]},
        {"kind": "file", "size": 1, "files": [["a", 1]], "dirs": []},
        {"kind": "directory", "size": 10**13, "files": [["a", 10**13]], "dirs": []},
        {"kind": "directory", "size": 2, "files": [["a", 1], ["a/b", 1]], "dirs": []},
        {"kind": "link"},
        ["not", "a", "mapping"],
    ],
)
def test_a_hostile_manifest_is_refused_and_writes_nothing_outside(
    manifest: object, s3server: MotoS3, tmp_path: Path
) -> None:
    store = _store(s3server)
    ref = Ref("a" * 64, "art")
    store.put_json(store._manifest_key(ref), manifest)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(StoreError, match="refused"):
        store.get(ref, out, OutputLimits())
    assert not (tmp_path / "escape").exists() and list(out.iterdir()) == []


@pytest.mark.parametrize(
    ("body", "why"), [(b"evil content", "does not match its digest"), (b"x" * 99, "size")]
)
def test_content_that_does_not_match_its_manifest_is_refused(
    body: bytes, why: str, s3server: MotoS3, tmp_path: Path
) -> None:
    store = _store(s3server)
    f = tmp_path / "m.txt"
    f.write_text("true content")
    ref = store.put_path(f, hash_path(f))
    s3server.client().put_object(Bucket=BUCKET, Key=store._data_key(ref), Body=body)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(StoreError, match=why):
        store.get(ref, out)
    assert why != "size" or not (out / "m.txt").exists()  # refused before a byte is written


def test_cache_records_are_written_once_and_read_back_on_another_home(
    s3server: MotoS3, tmp_path: Path
) -> None:
    s3 = _store(s3server)
    one = SharedArtifacts(s3, ArtifactStore(tmp_path / "one"), OutputLimits())
    f = tmp_path / "data.csv"
    f.write_text("a,b\n1,2\n")
    digest = hash_path(f)
    value_digest, value_path = one.local.put_value({"acc": 0.9}, "m")
    outputs = {
        "data": {"type": "dataset", "digest": digest, "path": str(f)},
        "m": {"type": "metrics", "digest": value_digest, "path": str(value_path), "value": {"acc": 0.9}},
    }
    one.publish(outputs)
    one.cache_put("k" * 64, outputs)
    one.cache_put("k" * 64, {})  # the first writer wins (a conditional put)
    two = SharedArtifacts(s3, ArtifactStore(tmp_path / "two"), OutputLimits())
    hit = two.cache_get("k" * 64)
    assert hit is not None and hit["m"]["value"] == {"acc": 0.9}
    assert Path(hit["data"]["path"]).read_text() == "a,b\n1,2\n"
    assert Path(hit["data"]["path"]).is_relative_to(tmp_path / "two")
    assert two.cache_get("z" * 64) is None
    raw = s3server.client().get_object(Bucket=BUCKET, Key=s3.key("cache", "k" * 64 + ".json"))
    assert str(tmp_path) not in raw["Body"].read().decode()  # records hold no machine's paths
    ref = Ref(digest, "data.csv")
    s3server.client().delete_object(Bucket=BUCKET, Key=s3._manifest_key(ref))
    three = SharedArtifacts(s3, ArtifactStore(tmp_path / "three"), OutputLimits())
    assert three.cache_get("k" * 64) is None  # an artifact gone from the bucket: a miss, not an error


def test_waiting_for_a_result_made_elsewhere(s3server: MotoS3, tmp_path: Path) -> None:
    s3 = _store(s3server)
    here = SharedArtifacts(s3, ArtifactStore(tmp_path / "here"), OutputLimits())
    there = SharedArtifacts(s3, ArtifactStore(tmp_path / "there"), OutputLimits())
    with pytest.raises(StoreError, match="has no result in the store yet"):
        here.wait_result("run1", "train/fit", time.monotonic() + 0.3, every=0.05)
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    with pytest.raises(Cancelled):
        here.wait_result("run1", "train/fit", time.monotonic() + 60, stop, every=0.05)
    f = tmp_path / "model.bin"
    f.write_bytes(b"m")
    outputs = {"model": {"type": "model", "digest": hash_path(f), "path": str(f)}}
    there.publish(outputs)
    threading.Timer(0.2, there.put_result, ("run1", "train/fit", "succeeded", outputs)).start()
    got = here.wait_result("run1", "train/fit", time.monotonic() + 60, every=0.05)
    assert got["status"] == "succeeded" and Path(got["outputs"]["model"]["path"]).read_bytes() == b"m"
    there.put_result("run1", "train/eval", "failed", error="boom")
    assert here.wait_result("run1", "train/eval", time.monotonic() + 5)["error"] == "boom"
    with pytest.raises(ValueError):
        here.wait_result("../x", "a", time.monotonic() + 1)
    assert json.loads(json.dumps(got["outputs"]))  # plain JSON records


def test_steps_never_see_the_store_keys() -> None:
    from mlops_nocode.runtime.sandbox import base_env

    environ = {
        "PATH": "/usr/bin",
        "ARTIFACT_STORE_ACCESS_KEY": "AKIA",
        "ARTIFACT_STORE_SECRET_KEY": "s3cr3t",
        "AWS_ACCESS_KEY_ID": "AKIA",
        "AWS_SECRET_ACCESS_KEY": "s3cr3t",
        "AWS_SESSION_TOKEN": "tok",
    }
    env = base_env(environ)
    assert env.get("PATH") == "/usr/bin"
    assert not {k for k in env if k.startswith(("ARTIFACT_STORE_", "AWS_"))}
