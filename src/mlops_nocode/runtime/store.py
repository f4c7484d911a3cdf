"""Content-addressed artifact store and the step cache index, under MLOPS_HOME."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from mlops_nocode.runtime.collect import Budget, copy_entry

_CHUNK = 1 << 20


def hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def hash_path(path: Path) -> str:
    """sha256 of a file's bytes, or of a directory's sorted entries (folders, and files with their hash)."""
    if path.is_file():
        return hash_file(path)
    h = hashlib.sha256(b"dir\0")
    for p in sorted(path.rglob("*")):
        rel = p.relative_to(path).as_posix()
        h.update(f"d\0{rel}\n".encode() if p.is_dir() else f"f\0{rel}\0{hash_file(p)}\n".encode())
    return h.hexdigest()


def _read_only(path: Path) -> None:
    """Stored files are read-only, so a step cannot change an artifact others share."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for f in files:
        with contextlib.suppress(OSError):
            f.chmod(0o444)


def module_digest(module: str) -> str:
    """sha256 of a module's source file, without importing it ("" when it cannot be found)."""
    with contextlib.suppress(ImportError, ValueError, OSError, AttributeError):
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.origin and os.path.isfile(spec.origin):
            return hash_file(Path(spec.origin))
    return ""


class ArtifactStore:
    """Artifacts stored once by content: `root/ab/<sha256>/<original name>`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.values = root / "values"
        self.values.mkdir(parents=True, exist_ok=True)

    def put(self, parent_fd: int, name: str, budget: Budget, shown: str) -> tuple[str, Path]:
        """Copy the file or folder `name` of the open folder `parent_fd` into the store; return its
        digest and stored path.

        The copy is made by `collect.copy_entry` (never through a link, only regular files and folders,
        counted against `budget`) into a staging folder, then renamed into place; the same content under
        another name is stored beside the first. Refused or Stopped leave nothing behind.
        """
        staging = self.root / ".staging" / f"{os.getpid()}-{uuid.uuid4().hex}"
        staging.mkdir(parents=True)
        try:
            digest = copy_entry(parent_fd, name, staging / name, budget, shown)
            dest_dir = self.root / digest[:2] / digest
            dest = dest_dir / name
            if dest.exists():
                return digest, dest
            _read_only(staging / name)
            dest_dir.parent.mkdir(exist_ok=True)
            try:
                os.rename(staging, dest_dir)
            except OSError:  # the same content is already stored, maybe under another name
                if not dest.exists():
                    with contextlib.suppress(OSError):
                        os.rename(staging / name, dest)
                if not dest.exists():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return digest, dest

    def clean_staging(self) -> None:
        """Remove the staging folders of processes that are gone (a Runner killed while it copied)."""
        with contextlib.suppress(OSError):
            for d in (self.root / ".staging").iterdir():
                pid = d.name.partition("-")[0]
                if pid.isdigit() and not _alive(int(pid)):
                    shutil.rmtree(d, ignore_errors=True)

    def put_value(self, value: Any, name: str) -> tuple[str, Path]:
        """Store a JSON value as `values/<sha256>.json` (one flat folder: values are small and many)."""
        data = json.dumps(value, sort_keys=True).encode()
        digest = hashlib.sha256(data).hexdigest()
        dest = self.values / f"{digest}.json"
        if not dest.exists():
            tmp = dest.with_suffix(f".{uuid.uuid4().hex}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, dest)
        return digest, dest


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class CacheIndex:
    """Step cache: key (playbook version + parameters + input digests) -> the outputs it produced."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key(playbook: str, digest: str, params: dict[str, Any], inputs: dict[str, str]) -> str:
        text = json.dumps([playbook, digest, params, inputs], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def get(self, key: str) -> dict[str, Any] | None:
        """The recorded outputs, or None when absent or when a recorded artifact has disappeared."""
        try:
            record: dict[str, Any] = json.loads((self.root / f"{key}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        for out in record.values():
            if not Path(out["path"]).exists():
                return None
        return record

    def put(self, key: str, outputs: dict[str, Any]) -> None:
        tmp = self.root / f".{key}.{uuid.uuid4().hex}.tmp"
        tmp.write_text(json.dumps(outputs), encoding="utf-8")
        os.replace(tmp, self.root / f"{key}.json")

    def clear(self) -> int:
        n = 0
        for f in self.root.glob("*.json"):
            with contextlib.suppress(OSError):
                f.unlink()
                n += 1
        return n
