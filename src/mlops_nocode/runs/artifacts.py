"""A run's artifacts: what its pipeline outputs point to in the content-addressed store, and serving them.

The worker records, at the end of a run, each pipeline output's type, digest and stored path (`runs.
artifacts` column). Downloads look the name up in that record (a name is never joined into a path) and
check that the stored path lies inside MLOPS_HOME/artifacts before reading it; directories are streamed
as .tar.gz built on the fly. An artifact holding the value of a secret its run used (in a file's bytes
or a file's name) is withheld: a step's files are its data and are not rewritten, so they are not served.
"""

from __future__ import annotations

import os
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlops_nocode.compiler.plan import Plan
from mlops_nocode.runtime.limits import LimitsConfigError, load_limits
from mlops_nocode.runtime.redaction import Redactor
from mlops_nocode.runtime.s3store import StoreError
from mlops_nocode.runtime.shared import SharedArtifacts, open_shared
from mlops_nocode.runtime.state import RunResult
from mlops_nocode.runtime.store import ArtifactStore, Ref

CHUNK = 64 * 1024
SCAN_CHUNK = 1 << 20
_VERDICTS: dict[tuple[str, int], bool] = {}  # (digest, patterns) -> holds a secret (content-addressed)
VERDICTS_KEPT = 4096


class ArtifactMissing(LookupError):
    """No artifact by that name, or its file is gone (or not where the store keeps files)."""


class ArtifactUnavailable(ArtifactMissing):
    """The artifact is in the shared (S3) store, which cannot be read now; the message says why."""


_SHARED: dict[Path, SharedArtifacts | None] = {}
_SHARED_LOCK = threading.Lock()


def shared_store(home: Path) -> SharedArtifacts | None:
    """The S3 store ARTIFACT_STORE_* names for this gateway (None when unset), made once per home."""
    with _SHARED_LOCK:
        if home not in _SHARED:
            try:
                _SHARED[home] = open_shared(ArtifactStore(home / "artifacts"), load_limits())
            except (StoreError, LimitsConfigError):
                _SHARED[home] = None
        return _SHARED[home]


def _remote(record: dict[str, Any]) -> tuple[str, Ref | None]:
    """(value digest, None) or ("", ref) for the record of an artifact stored on another machine."""
    path = Path(str(record.get("path", "")))
    digest = str(record.get("digest") or "")
    if path.parent.name == "values" and path.name == f"{digest}.json":
        return digest, None
    try:
        return "", Ref.of(digest, path.name)
    except ValueError:
        raise ArtifactMissing("the artifact's record names no stored file") from None


def records(plan: Plan, result: RunResult, redactor: Redactor | None = None) -> dict[str, dict[str, Any]]:
    """{output name: {type, digest, path, step, output, withheld}} for every pipeline output the run
    produced; `withheld` when it holds a form of one of the run's secret values (`redactor`'s), decided
    now, while the Runner knows them (the vault's values may change or go before a download)."""
    out: dict[str, dict[str, Any]] = {}
    for name, b in plan.outputs.items():
        state = result.steps.get(b.step)
        rec = state.outputs.get(b.output) if state is not None else None
        if rec is not None and rec.get("path"):
            out[name] = {
                "type": rec.get("type"),
                "digest": rec.get("digest"),
                "path": str(rec["path"]),
                "step": b.step,
                "output": b.output,
                "withheld": _withheld(Path(str(rec["path"])), redactor, rec.get("digest")),
            }
    return out


def _withheld(path: Path, redactor: Redactor | None, digest: str | None) -> bool:
    try:
        return redactor is not None and holds_secret(path, redactor, digest)
    except OSError:  # gone from the store: a download answers 404 anyway
        return False


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def locate(home: Path, record: dict[str, Any]) -> Path:
    """The stored path of a record, refused unless it is inside MLOPS_HOME/artifacts and still exists."""
    root = (home / "artifacts").resolve()
    path = Path(str(record.get("path", ""))).resolve()
    if not path.is_relative_to(root) or path == root or not path.exists():
        return _fetched(home, record)
    return path


def _fetched(home: Path, record: dict[str, Any]) -> Path:
    """An artifact another machine stored, downloaded (and checked) into this gateway's local store."""
    missing = ArtifactMissing("the artifact's file is not in the store (it may have been cleaned up)")
    shared = shared_store(home)
    if shared is None:
        raise missing
    value, ref = _remote(record)
    try:
        if ref is None:
            path = shared.fetch_value(value)
            if path is None:
                raise missing
            return path
        if not shared.s3.exists(ref):
            raise missing
        return shared.fetch(ref)
    except StoreError as e:
        raise ArtifactUnavailable(str(e)) from None


def describe(home: Path, name: str, record: dict[str, Any]) -> dict[str, Any]:
    """The API's view of one artifact (never the server's paths)."""
    info: dict[str, Any] = {
        "name": name,
        "withheld": bool(record.get("withheld")),
        "type": record.get("type"),
        "digest": record.get("digest"),
        "step": record.get("step"),
        "output": record.get("output"),
    }
    try:
        path = locate(home, record)
    except ArtifactMissing:
        return info | {"available": False, "kind": None, "filename": None, "size": None}
    kind = "directory" if path.is_dir() else "file"
    filename = path.name + (".tar.gz" if kind == "directory" else "")
    return info | {"available": True, "kind": kind, "filename": filename, "size": _size(path)}


def iter_file(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def iter_targz(path: Path) -> Iterator[bytes]:
    """A .tar.gz of the directory `path` (entries under its name), produced while it is read: a thread
    writes the archive into a pipe; closing the iterator early (client gone) stops the writer."""
    read_fd, write_fd = os.pipe()

    def write() -> None:
        try:
            with os.fdopen(write_fd, "wb") as w, tarfile.open(fileobj=w, mode="w|gz") as tar:
                tar.add(path, arcname=path.name, recursive=True)
        except (BrokenPipeError, OSError):
            pass

    thread = threading.Thread(target=write, name=f"targz-{path.name}", daemon=True)
    thread.start()
    try:
        with os.fdopen(read_fd, "rb") as r:
            while chunk := r.read(CHUNK):
                yield chunk
    finally:
        thread.join(5)


def holds_secret(path: Path, redactor: Redactor, digest: str | None = None) -> bool:
    """Whether the stored artifact `path` (a file, or any file or name under a folder) contains a form of
    one of the redactor's secret values. Verdicts are remembered per content digest."""
    if not redactor:
        return False
    key = (digest or "", hash(redactor.patterns))
    if digest and key in _VERDICTS:
        return _VERDICTS[key]
    found = _scan(path, redactor)
    if digest:
        if len(_VERDICTS) >= VERDICTS_KEPT:
            _VERDICTS.clear()
        _VERDICTS[key] = found
    return found


def _scan(path: Path, redactor: Redactor) -> bool:
    patterns = [p.encode("utf-8", "surrogatepass") for p in redactor.patterns]
    keep = max(len(p) for p in patterns) - 1
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if not p.is_symlink())
        if any(redactor.spans(str(p.relative_to(path.parent))) for p in files):
            return True
        files = [p for p in files if p.is_file()]
    else:
        files = [path]
    for f in files:
        tail = b""
        with open(f, "rb") as fh:
            while chunk := fh.read(SCAN_CHUNK):
                buf = tail + chunk
                if any(p in buf for p in patterns):
                    return True
                tail = buf[-keep:] if keep else b""
    return False
