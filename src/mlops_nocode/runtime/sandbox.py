"""The step sandbox: what a step may read, write and inherit, and the setting that says how it is enforced.

Settings (environment variables, no prefix):
- `STEP_SANDBOX` = `auto` (default) | `landlock` | `none`. `auto` confines steps with Landlock using every
  feature the kernel has; where the kernel has no Landlock at all, `mlops up` and `mlops worker` refuse
  to start (set `none` to accept unconfined steps) and the CLI warns and runs unconfined. `landlock`
  requires every feature used (ABI 6, Linux 6.12: signal and abstract-socket scoping) and fails
  otherwise, everywhere. `none` confines nothing (the environment is still scrubbed).
- `STEP_SANDBOX_READ` / `STEP_SANDBOX_WRITE`: extra folders steps may read (and run programs from) /
  read and write, separated by `:`.
- `STEP_ENV_PASSTHROUGH`: extra environment variable names (comma-separated) passed from the Runner's
  environment to steps.

A confined step sees: the system's software folders and the Python it runs on (read-only), `/etc`'s
world-readable files, `/proc` and `/sys` (read-only; other processes' memory and environment stay closed),
`/dev/null` and friends, `/dev/shm`, the folders of the spec files and `PYTHONPATH` (read-only), its
inputs (read-only), its output folder and a private temporary folder (`TMPDIR` and `HOME`), and for Python
steps the run's scratch folder. Never MLOPS_HOME otherwise (credentials, secret key, database, other runs
and steps), the SQLite database wherever it is, nor the usual credential folders of the user's home.
"""

from __future__ import annotations

import functools
import glob
import os
import re
import stat
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlops_nocode.runtime import confine

Grant = tuple[str, str]  # (path, kind): kind is a key of confine.RIGHTS

# Variables of the platform itself: never given to a step, whatever a spec or a setting asks.
RESERVED_ENV = frozenset(
    {"DATABASE_URL", "SECRET_KEY", "MLOPS_RUN_TOKEN", "N8N_API_KEY", "WINDMILL_API_KEY", "MLOPS_HOME"}
)
PASSED_ENV = frozenset(
    {
        "PATH",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TERM",
        "NO_COLOR",
        "PYTHONPATH",
        "PYTHONHASHSEED",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONIOENCODING",
        "PYTHONUTF8",
        "PYTHONWARNINGS",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS",
        "CUDA_VISIBLE_DEVICES",
        "NVIDIA_VISIBLE_DEVICES",
        "HIP_VISIBLE_DEVICES",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
    }
)
SYSTEM_SOFTWARE = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
GPU_DEVICES = ("/dev/nvidia*", "/dev/dri", "/dev/kfd")  # NVIDIA, DRM render nodes, AMD ROCm
HOME_CREDENTIALS = (
    ".ssh",
    ".gnupg",
    ".aws",
    ".azure",
    ".config/gcloud",
    ".kube",
    ".docker",
    ".netrc",
    ".pgpass",
    ".git-credentials",
    ".password-store",
    ".mlops-nocode",
)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SandboxError(RuntimeError):
    """The sandbox cannot be used as configured; the message says what to change."""


class SandboxSettings(BaseSettings):
    """The step sandbox's settings (see the module's docstring)."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    step_sandbox: Literal["auto", "landlock", "none"] = "auto"
    step_sandbox_read: str = ""
    step_sandbox_write: str = ""
    step_sandbox_protect: str = ""  # os.pathsep list: never granted, even under a granted folder
    step_env_passthrough: str = ""

    @field_validator("step_env_passthrough")
    @classmethod
    def _names(cls, value: str) -> str:
        for name in _split(value, ","):
            if not _ENV_NAME.match(name):
                raise ValueError(f"{name!r} is not an environment variable name")
            if name.upper() in RESERVED_ENV:
                raise ValueError(f"{name} belongs to the platform and is never given to steps: remove it")
        return value

    @property
    def passthrough(self) -> frozenset[str]:
        return frozenset(_split(self.step_env_passthrough, ","))


def _split(value: str, sep: str) -> list[str]:
    return [v.strip() for v in value.split(sep) if v.strip()]


def load_settings() -> SandboxSettings:
    """The settings from the environment; a bad value is a SandboxError naming the variable."""
    try:
        return SandboxSettings()
    except ValidationError as e:
        first = e.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "STEP_SANDBOX"
        raise SandboxError(f"{name}: {first['msg']}") from None


@dataclass(frozen=True)
class Confinement:
    """How steps are confined here: `landlock` (with the kernel's ABI) or `none`; `notes` say what lacks."""

    mode: Literal["landlock", "none"]
    abi: int = 0
    notes: tuple[str, ...] = ()
    settings: SandboxSettings = field(default_factory=SandboxSettings)

    @property
    def confined(self) -> bool:
        return self.mode == "landlock"


def resolve(settings: SandboxSettings | None = None) -> Confinement:
    """What STEP_SANDBOX asks for, checked against this kernel (SandboxError when it cannot be had)."""
    settings = settings or load_settings()
    if settings.step_sandbox == "none":
        return Confinement("none", settings=settings)
    abi, why = confine.landlock_abi()
    if settings.step_sandbox == "landlock" and abi < confine.SCOPED_ABI:
        have = f"this kernel has Landlock ABI {abi}" if abi else why
        raise SandboxError(
            f"STEP_SANDBOX=landlock needs Landlock ABI {confine.SCOPED_ABI} (Linux 6.12 or later: steps "
            f"may not signal other processes); {have}. Upgrade the kernel, or set STEP_SANDBOX=auto to use "
            "what this kernel has"
        )
    if abi == 0:
        return Confinement("none", notes=(why,), settings=settings)
    notes = []
    if abi < confine.SCOPED_ABI:
        notes.append(
            f"Landlock ABI {abi} < {confine.SCOPED_ABI} (Linux 6.12): steps can signal other processes of "
            "the same user and reach abstract UNIX sockets"
        )
    if abi < 2:
        notes.append("Landlock ABI 1: steps cannot rename or link files between folders")
    return Confinement("landlock", abi, tuple(notes), settings)


def server_check() -> Confinement:
    """For `mlops up` and `mlops worker`: refuse to run others' steps unconfined unless told to."""
    conf = resolve()
    if conf.settings.step_sandbox == "auto" and not conf.confined:
        raise SandboxError(
            f"steps cannot be confined here ({'; '.join(conf.notes)}): they could read this server's "
            "credentials, keys and database. Use a kernel with Landlock (Linux 5.13+, ideally 6.12+), or "
            "set STEP_SANDBOX=none to run steps unconfined anyway"
        )
    return conf


def base_env(environ: Mapping[str, str], passthrough: Iterable[str] = ()) -> dict[str, str]:
    """The part of the Runner's environment steps (and the fork server) inherit: an allow-list."""
    allowed = PASSED_ENV | set(passthrough)
    return {
        k: v
        for k, v in environ.items()
        if (k in allowed or k.startswith("LC_")) and k not in RESERVED_ENV and "\0" not in v
    }


def run_env(conf: Confinement, environ: Mapping[str, str]) -> dict[str, str]:
    """What the run's steps inherit of `environ` (`RunSandbox.env`, without computing the grants)."""
    return base_env(environ, conf.settings.passthrough)


def step_env(base: Mapping[str, str], tmp: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """A step's whole environment: `base`, its private temporary folder as TMPDIR and HOME, and `extra`
    (its own secrets, command env, MLOPS_RUN_ID, MLOPS_STEP_ID)."""
    t = str(tmp)
    return {**base, "TMPDIR": t, "TMP": t, "TEMP": t, "HOME": t, **extra}


@dataclass(frozen=True)
class RunSandbox:
    """What every step of one run may see; `step_grants` adds what one step may.

    Two Landlock layers confine a step. The fork server's (`server_grants`) holds the exact software
    grants (`software`: every protected path carved out) plus the run's folder and the artifacts. Each
    step's own layer narrows that to its own folders: it holds `shared`, the same software grants carved
    only around MLOPS_HOME (the server's layer already excludes the rest, and what both allow is all a
    step gets), so a step's layer needs a few dozen rules instead of hundreds.
    """

    confinement: Confinement
    env: dict[str, str]
    software: tuple[Grant, ...]
    shared: tuple[Grant, ...]
    run_dir: Path
    home: Path

    @property
    def confined(self) -> bool:
        return self.confinement.confined

    def server_grants(self) -> list[Grant]:
        """The fork server's own bounds: the software, the run's folder and every artifact."""
        return [*self.software, (str(self.run_dir), "rw"), (str(self.home / "artifacts"), "read")]

    def step_grants(self, out_dir: Path, tmp: Path, inputs: Iterable[str], work: Path | None) -> list[Grant]:
        """One step's own grants, besides `shared`."""
        grants = [(str(out_dir), "rw"), (str(tmp), "rw"), *((p, "read") for p in inputs)]
        if work is not None:
            grants.append((str(work), "rw"))
        return grants


def for_run(
    conf: Confinement,
    home: Path,
    run_dir: Path,
    environ: Mapping[str, str],
    python_path: Iterable[str] = (),
    protect: Iterable[Path] = (),
) -> RunSandbox:
    """The sandbox of one run of the Runner whose MLOPS_HOME is `home`."""
    env = run_env(conf, environ)
    if not conf.confined:
        return RunSandbox(conf, env, (), (), run_dir, home)
    extra = [Path(p) for p in _split(conf.settings.step_sandbox_protect, os.pathsep)]
    protected = [home, *protect, *extra, *_sqlite_file(environ.get("DATABASE_URL"))]
    user_home = Path(environ.get("HOME") or Path.home())
    protected += [user_home / name for name in HOME_CREDENTIALS]
    sources = [*_split(environ.get("PYTHONPATH", ""), os.pathsep), *python_path]
    programs = [p for p in _split(environ.get("PATH", ""), os.pathsep) if os.path.isabs(p)]
    # a version manager's shims (pyenv, rbenv, asdf: ROOT/shims on PATH) run programs from its ROOT
    programs += [str(Path(p).parent) for p in programs if Path(p).name == "shims"]
    wanted = _wanted(
        [_real(p) for p in [*sources, *programs]],
        _split(conf.settings.step_sandbox_read, os.pathsep),
        _split(conf.settings.step_sandbox_write, os.pathsep),
    )
    software = _carve(wanted, sorted({_real(p) for p in protected}), _etc_private()[0])
    shared = _carve(wanted, [_real(home)], ())
    return RunSandbox(conf, env, software, shared, run_dir, home)


def _real(path: str | Path) -> str:
    return os.path.realpath(os.path.expanduser(str(path)))


def _sqlite_file(url: str | None) -> list[Path]:
    if url and url.startswith("sqlite:///"):
        return [Path(url.removeprefix("sqlite:///").split("?")[0])]
    return []


def _wanted(sources: list[str], read: list[str], write: list[str]) -> list[Grant]:
    """Everything steps may use, before protected paths are carved out."""
    wanted: list[Grant] = [(p, "ro") for p in SYSTEM_SOFTWARE]
    wanted += [(p, "ro") for p in [*_python_folders(), *sources, *read]]
    wanted += [(p, "rw") for p in write]
    wanted += [("/proc", "read"), ("/sys", "read"), ("/dev/shm", "rw"), ("/etc", "read")]
    wanted += [(p, "dev") for p in [*DEVICES, *(g for pattern in GPU_DEVICES for g in glob.glob(pattern))]]
    wanted += [(p, "read") for p in _etc_private()[1]]
    return [(_real(p), kind) for p, kind in wanted]


def _carve(wanted: list[Grant], protected: Iterable[str], private_etc: Iterable[str]) -> tuple[Grant, ...]:
    """`wanted` without anything protected (and without /etc's private files), nested grants merged."""
    protected = list(protected)
    grants: list[Grant] = []
    for path, kind in wanted:
        grants += _outside(path, kind, [*protected, *private_etc] if path == "/etc" else protected)
    kinds: dict[str, set[str]] = {}
    for path, kind in grants:
        kinds.setdefault(path, set()).add(kind)
    kept: list[Grant] = []
    for path, kind in dict.fromkeys(grants):
        rights = confine.RIGHTS[kind]
        covered = any(  # by a grant of a folder above it (paths are real: no trailing or double slash)
            rights & ~confine.RIGHTS[k] == 0 for parent in _parents(path) for k in kinds.get(parent, ())
        )
        if not covered:
            kept.append((path, kind))
    return tuple(kept)


def _parents(path: str) -> list[str]:
    """Every folder above `path`, up to `/` (one look-up each instead of a scan of every grant)."""
    out = []
    while (parent := os.path.dirname(path)) != path:
        out.append(parent)
        path = parent
    return out


def _python_folders() -> list[str]:
    """Where the Python of the Runner and its installed packages live (not the script folder or cwd)."""
    folders = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    folders.add(str(Path(confine.__file__).resolve().parents[2]))  # the folder holding mlops_nocode
    env_path = set(_split(os.environ.get("PYTHONPATH", ""), os.pathsep))
    first = {sys.path[0]} if sys.path and not sys.flags.safe_path else set()
    # `python -m` puts the working directory first, and the CLI may insert spec folders before it later
    cwd = {_real(os.getcwd())} if not sys.flags.safe_path else set()
    folders.update(p for p in sys.path if p and p not in env_path and p not in first and _real(p) not in cwd)
    return sorted(folders)


def _within(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _outside(path: str, kind: str, protected: Iterable[str]) -> list[Grant]:
    """`path` granted as `kind`, split around what is protected: nothing inside a protected path, and a
    folder holding one is granted entry by entry (symbolic links left out: their targets stand alone)."""
    protected = list(protected)
    if not os.path.exists(path) or any(_within(path, p) for p in protected):
        return []
    if not any(_within(p, path) for p in protected):
        return [(path, kind)]
    try:
        entries = list(os.scandir(path))
    except OSError:
        return []
    out: list[Grant] = []
    for entry in entries:
        if not entry.is_symlink():
            out += _outside(entry.path, kind, protected)
    return out


@functools.lru_cache(maxsize=1)
def _etc_private() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Files and folders of /etc that others may not read (shadow, private keys ...), and the world-readable
    targets of its symbolic links that lie outside the granted software (e.g. /etc/resolv.conf's)."""
    private, targets = [], []
    for root, dirs, files in os.walk("/etc"):
        for name in dirs + files:
            path = os.path.join(root, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                target = os.path.realpath(path)
                granted = any(_within(target, p) for p in ("/etc", *SYSTEM_SOFTWARE, "/proc"))
                if not granted and _readable(target):
                    targets.append(target)
            elif not _readable_by_others(st.st_mode):
                private.append(path)
                if name in dirs:
                    dirs.remove(name)
    return tuple(private), tuple(dict.fromkeys(targets))


def _readable_by_others(mode: int) -> bool:
    return bool(mode & stat.S_IROTH) and (not stat.S_ISDIR(mode) or bool(mode & stat.S_IXOTH))


def _readable(path: str) -> bool:
    try:
        return bool(os.stat(path).st_mode & stat.S_IROTH)
    except OSError:
        return False
