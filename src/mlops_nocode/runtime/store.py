"""Content-addressed artifact store and the step cache index, under MLOPS_HOME."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from mlops_nocode.runtime.collect import Budget, copy_entry
from mlops_nocode.runtime.limits import OutputLimits

_CHUNK = 1 << 20
_DIGEST = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Ref:
    """An artifact by content: its sha256 and its name (one path component)."""

    digest: str
    name: str

    def __str__(self) -> str:
        return f"{self.digest}/{self.name}"

    @classmethod
    def parse(cls, text: str) -> Ref:
        digest, _, name = text.partition("/")
        return cls.of(digest, name)

    @classmethod
    def of(cls, digest: str, name: str) -> Ref:
        """Refused (ValueError) unless `digest` is a sha256 and `name` one safe path component."""
        if not _DIGEST.fullmatch(digest):
            raise ValueError(f"not a sha256 digest: {digest[:80]!r}")
        if not safe_component(name):
            raise ValueError(f"not a file name: {name[:80]!r}")
        return cls(digest, name)


def safe_component(name: str) -> bool:
    return (
        0 < len(name.encode("utf-8", "surrogatepass")) <= 255
        and name not in (".", "..")
        and not (set(name) & {"/", "\0", "\\"})
    )


def safe_rel(rel: str) -> bool:
    """Whether `rel` (from a manifest: untrusted) is a relative path of safe components."""
    return bool(rel) and len(rel) < 4096 and all(safe_component(p) for p in rel.split("/"))


class Artifacts(Protocol):
    """What the Runner and the gateway need of an artifact store, local (`ArtifactStore`) or S3
    (`s3store.S3Store`): artifacts by content, named by a `Ref` (sha256 + name)."""

    def put_path(self, path: Path, digest: str) -> Ref:
        """Store the file or folder `path` whose content digest (`hash_path`) is `digest`."""

    def get(self, ref: Ref, dest_dir: Path, limits: OutputLimits | None = None) -> Path:
        """Write the artifact into the folder `dest_dir` as `dest_dir/<name>`; return that path."""

    def exists(self, ref: Ref) -> bool: ...

    def open(self, ref: Ref, member: str = "") -> IO[bytes]:
        """A stream of a file artifact (or of the file `member` of a folder artifact)."""

    def size(self, ref: Ref) -> int:
        """Bytes of the artifact (all its files for a folder)."""


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
        staging = self.new_staging()
        try:
            digest = copy_entry(parent_fd, name, staging / name, budget, shown)
            return digest, self.adopt(staging, digest, name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def new_staging(self) -> Path:
        """A new private folder to prepare an artifact in, beside the store (removed if its process dies)."""
        staging = self.root / ".staging" / f"{os.getpid()}-{uuid.uuid4().hex}"
        staging.mkdir(parents=True)
        return staging

    def adopt(self, staging: Path, digest: str, name: str) -> Path:
        """Move `staging/name` (content `digest`) into the store, read-only; return its stored path.
        The same content under another name is stored beside the first."""
        dest_dir = self.root / digest[:2] / digest
        dest = dest_dir / name
        if dest.exists():
            return dest
        _read_only(staging / name)
        dest_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(staging, dest_dir)
        except OSError:  # the same content is already stored, maybe under another name
            if not dest.exists():
                with contextlib.suppress(OSError):
                    os.rename(staging / name, dest)
            if not dest.exists():
                raise
        return dest

    def path_of(self, digest: str, name: str) -> Path:
        """Where the artifact (digest, name) is (or would be) stored."""
        return self.root / digest[:2] / digest / name

    def put_path(self, path: Path, digest: str) -> Ref:
        """Store a copy of the trusted file or folder `path` (the store's own, or one just verified)."""
        ref = Ref.of(digest, path.name)
        if not self.exists(ref):
            staging = self.new_staging()
            try:
                _copy(path, staging / path.name)
                self.adopt(staging, digest, path.name)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return ref

    def get(self, ref: Ref, dest_dir: Path, limits: OutputLimits | None = None) -> Path:
        dest = dest_dir / ref.name
        _copy(self.path_of(ref.digest, ref.name), dest)
        return dest

    def exists(self, ref: Ref) -> bool:
        return self.path_of(ref.digest, ref.name).exists()

    def open(self, ref: Ref, member: str = "") -> IO[bytes]:
        if member and not safe_rel(member):
            raise ValueError(f"not a relative path: {member[:80]!r}")
        path = self.path_of(ref.digest, ref.name)
        return open(path / member if member else path, "rb")

    def size(self, ref: Ref) -> int:
        path = self.path_of(ref.digest, ref.name)
        if path.is_file():
            return path.stat().st_size
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())

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
            self.values.mkdir(parents=True, exist_ok=True)  # cleaned up while a gateway runs
            tmp = dest.with_suffix(f".{uuid.uuid4().hex}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, dest)
        return digest, dest


def _copy(src: Path, dest: Path) -> None:
    if src.is_dir():
        shutil.copytree(src, dest, symlinks=True)
    else:
        shutil.copyfile(src, dest)


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
        text = json.dumps(outputs)
        dest = self.root / f"{key}.json"
        with contextlib.suppress(OSError, UnicodeDecodeError):
            if dest.stat().st_size == len(text.encode()) and dest.read_text(encoding="utf-8") == text:
                return  # the same record (a rerun, or identical steps): replacing a file costs milliseconds
        tmp = self.root / f".{key}.{uuid.uuid4().hex}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, dest)

    def clear(self) -> int:
        n = 0
        for f in self.root.glob("*.json"):
            with contextlib.suppress(OSError):
                f.unlink()
                n += 1
        return n
