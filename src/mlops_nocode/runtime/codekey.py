"""The code part of a step's cache key: digests of the code and files a step can depend on.

What goes in (docs/STEPS.md, "Caching", says the same for users):
- a Python step: the modules of the place its entry module is imported from. Code of your own (a folder
  beside the spec, a source checkout, an editable install) is hashed file by file: every module file of
  the import folder (`*.py` and extension modules at its top level, and in its packages recursively).
  A package installed in site-packages counts as its distribution's name, version and the digest of its
  RECORD file (pip's list of every installed file with its hash); the standard library as the Python
  version;
- a command step: each argv item (parameters and `${{ spec.dir }}` substituted) naming an existing file,
  by content, and for a `.py` script also the module files of its folder (what it can import beside it);
  an argv[0] found on PATH by its resolved path, size and modification time (executables can be large);
- the files the playbook declares under `spec.files`, by relative name and content;
- a litellm step: the model routes of MLOPS_HOME (llm/routes.yaml), by content: a route pointed at another
  model or server gives other answers.

Reading is bounded (see `file_digest`). Hashing is cheap on repeat: file digests are memoised per
process by (path, size, mtime, ctime, inode), except for files changed in the last two seconds (a change
within the clock's resolution could go unseen), and a Runner computes each step's code digest once per
distinct code.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.machinery
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import site
import stat
import sys
import sysconfig
import threading
import time
from pathlib import Path
from typing import Any

from mlops_nocode.compiler.plan import PlanStep

MAX_MODULE_FILES = 5_000
"""Module files hashed per import folder (sorted; past this many the rest is not looked at)."""
RACY_SECONDS = 2.0
MAX_HASHED_BYTES = 64 * 1024 * 1024
"""Files larger than this are keyed by size, times and inode, not content."""
_SPECIAL = ("/proc/", "/sys/", "/dev/")
_CHUNK = 1 << 20
_MODULE_SUFFIXES = tuple(importlib.machinery.SOURCE_SUFFIXES + importlib.machinery.EXTENSION_SUFFIXES)
_EXPR_RE = re.compile(r"\$\{\{\s*(params|spec)\.([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}")
_memo: dict[str, tuple[tuple[int, int, int, int], str]] = {}
_memo_lock = threading.Lock()


def file_digest(path: str | Path) -> str:
    """sha256 of a regular file's content, memoised by its stat; "missing" when it cannot be read.

    What the key may read is bounded, whatever an argv names: only regular files, never under /proc, /sys
    or /dev (some block on read), at most their size at stat time, and files above MAX_HASHED_BYTES are
    named by size, times and inode instead of content (hashing a big dataset would delay every run).
    """
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except OSError:
        return "missing"
    stamp = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    if not stat.S_ISREG(st.st_mode) or os.path.realpath(p).startswith(_SPECIAL):
        return "not-a-regular-file"
    if st.st_size > MAX_HASHED_BYTES:
        return "large:{}:{}:{}:{}".format(*stamp)
    with _memo_lock:
        hit = _memo.get(p)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    h = hashlib.sha256()
    try:
        with open(p, "rb") as f:
            left = st.st_size
            while left > 0 and (chunk := f.read(min(_CHUNK, left))):
                h.update(chunk)
                left -= len(chunk)
    except OSError:
        return "unreadable"
    digest = h.hexdigest()
    if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > RACY_SECONDS * 1e9:
        with _memo_lock:
            _memo[p] = (stamp, digest)
    return digest


def folder_modules(folder: Path, extra: Path | None = None) -> str:
    """Digest of the module files an import folder offers: its top-level modules, and its packages (folders
    with `__init__.py`, and `extra`, the entry's own package even when it is a namespace package)."""
    files: list[Path] = []

    def walk(d: Path, top: bool) -> None:
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError:
            return
        for e in entries:
            if len(files) >= MAX_MODULE_FILES or e.name.startswith(".") or e.name == "__pycache__":
                continue
            path = Path(e.path)
            if e.is_file() and e.name.endswith(_MODULE_SUFFIXES):
                files.append(path)
            elif e.is_dir(follow_symlinks=False) and (
                (path / "__init__.py").is_file() or (top and extra is not None and path == extra)
            ):
                walk(path, False)

    walk(folder, True)
    h = hashlib.sha256(b"modules\0")
    for f in files:
        h.update(f"{f.relative_to(folder).as_posix()}\0{file_digest(f)}\n".encode())
    return h.hexdigest()


@functools.cache
def _roots(kind: str) -> frozenset[str]:
    """The standard library's folders ("stdlib") or the site-packages folders ("site"), resolved."""
    paths = sysconfig.get_paths()
    if kind == "stdlib":
        roots = {paths[k] for k in ("stdlib", "platstdlib") if k in paths}
    else:
        roots = {paths[k] for k in ("purelib", "platlib") if k in paths}
        with contextlib.suppress(AttributeError):
            roots.update(site.getsitepackages())
        with contextlib.suppress(AttributeError):
            roots.add(site.getusersitepackages())
    return frozenset(os.path.realpath(r) for r in roots)


@functools.cache
def _distributions() -> dict[str, list[str]]:
    return dict(importlib.metadata.packages_distributions())  # reads every RECORD: once, and only if needed


@functools.cache
def _installed_digest(top: str) -> str:
    """Name, version and RECORD digest of the distribution providing the package `top`."""
    names = [top]  # most distributions are named like their package: no need to read every RECORD
    try:
        record = importlib.metadata.distribution(top).read_text("RECORD") or ""
        found = f"{top}/" in record or f"{top}.py" in record
    except importlib.metadata.PackageNotFoundError:
        found = False
    if not found:
        names = sorted(set(_distributions().get(top, [])))
    parts = []
    for name in names:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            dist = importlib.metadata.distribution(name)
            record = dist.read_text("RECORD") or ""
            parts.append(f"{name}=={dist.version}:{hashlib.sha256(record.encode()).hexdigest()}")
    return ";".join(parts) or f"unknown-distribution:{top}"


def python_code(entrypoint: str) -> str:
    """Digest of the code a Python step's entry module can import from where it is found."""
    module = entrypoint.split(":")[0]
    top = module.split(".")[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return f"not-found:{module}"
    locations = list(spec.submodule_search_locations or [])
    package: Path | None = None
    if locations:  # a package: its folder, in the import folder that holds it
        package = Path(locations[0])
        folder = package.parent
    elif spec.origin and os.path.isfile(spec.origin):
        folder = Path(spec.origin).parent
    else:
        return f"built-in:{module}:{sys.version}"
    real = os.path.realpath(folder)
    if real in _roots("stdlib"):
        return f"stdlib:{sys.version}"
    if real in _roots("site"):
        return "installed:" + _installed_digest(top)
    return "local:" + folder_modules(folder, package)


def command_code(step: PlanStep) -> str:
    """Digest of the files a command step's argv names (see the module docstring)."""
    argv = (step.command or {}).get("argv", [])
    spec_dir = step.spec_dir or ""

    def sub(m: re.Match[str]) -> str:
        if m[1] == "spec":
            return spec_dir if m[2] == "dir" else m[0]
        v = step.params.get(m[2], "")
        return v if isinstance(v, str) else json.dumps(v)

    found: list[Any] = []
    for i, template in enumerate(argv):
        arg = _EXPR_RE.sub(sub, template)
        if "${{" in arg:  # an input or an output: covered by the input digests
            continue
        if i == 0 and "/" not in arg:
            exe = shutil.which(arg)
            if exe is not None:
                with contextlib.suppress(OSError):
                    st = os.stat(exe)
                    found.append([i, "exe", exe, st.st_size, st.st_mtime_ns])
            continue
        path = os.path.abspath(arg) if i == 0 else arg
        if not os.path.isabs(path) or not os.path.isfile(path):
            continue
        name = _name(path, spec_dir)
        found.append([i, name, file_digest(path)])
        folder = os.path.realpath(os.path.dirname(path))
        if path.endswith(".py") and folder not in _roots("stdlib") | _roots("site"):
            found.append([i, "modules", folder_modules(Path(path).parent)])
    return hashlib.sha256(json.dumps(found).encode()).hexdigest()


def declared_files(step: PlanStep) -> str:
    """Digest of the files the playbook ships with (`spec.files`), by relative name and content."""
    if not step.files:
        return ""
    folder = Path(step.spec_dir or ".")
    h = hashlib.sha256(b"files\0")
    for name in step.files:
        h.update(f"{name}\0{file_digest(folder / name)}\n".encode())
    return h.hexdigest()


def _name(path: str, spec_dir: str) -> str:
    """A file's name in the key: relative to the playbook's folder when inside it (moving the folder keeps
    the key), else absolute."""
    if spec_dir and Path(path).is_relative_to(spec_dir):
        return "spec:" + Path(path).relative_to(spec_dir).as_posix()
    return path


class CodeDigests:
    """One Runner's code digests: each distinct code (module, argv, files) is hashed once per run."""

    def __init__(self, home: Path | None = None) -> None:
        self._seen: dict[Any, str] = {}
        self._home = home

    def of(self, step: PlanStep) -> str:
        """The code digest of a step (see the module docstring)."""
        if step.runtime == "python" and step.code is not None:  # its source is in the playbook's digest
            key: Any = ("inline", hashlib.sha256(step.code.encode("utf-8", "surrogatepass")).hexdigest())
        elif step.runtime == "python" and step.entrypoint:
            key = ("python", step.entrypoint.split(":")[0])
        elif step.runtime == "command":
            argv = (step.command or {}).get("argv", [])
            params = json.dumps(step.params, sort_keys=True, default=str) if _uses_params(argv) else ""
            key = ("command", tuple(argv), params, step.spec_dir)
        elif step.runtime == "litellm" and self._home is not None:
            key = ("routes", self._home / "llm" / "routes.yaml")
        else:
            key = ("other",)
        code = self._seen.get(key)
        if code is None:
            if key[0] == "python":
                code = python_code(key[1])
            elif key[0] == "command":
                code = command_code(step)
            elif key[0] == "inline":
                code = f"inline:{key[1]}"
            elif key[0] == "routes":
                try:
                    code = "routes:" + hashlib.sha256(key[1].read_bytes()).hexdigest()
                except OSError:
                    code = "routes:none"
            else:
                code = ""
            self._seen[key] = code
        if step.files:
            files_key = ("files", step.spec_dir, step.files)
            files = self._seen.get(files_key)
            if files is None:
                files = self._seen[files_key] = declared_files(step)
            code += ":" + files
        return code


def _uses_params(argv: list[str]) -> bool:
    return any("params." in a for a in argv)
