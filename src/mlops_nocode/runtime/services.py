"""The registry of long-running services that `runtime: serve` steps start, and their processes.

Each service has a folder `MLOPS_HOME/serving/<name>/` holding `service.json` (its record, mode 0600: what
`mlops serve list` and GET /api/v1/services show, and how to start it again; never a secret's value),
`service.log` (what the process prints) and `tmp/` (its TMPDIR and HOME). A service is one process in
its own session (it outlives the step that started it): `python -m mlops_nocode.runtime.servehost`,
which confines itself like a step and then runs the ASGI app with uvicorn, or execs the section's
command. Stopping it sends SIGTERM to its process group, then SIGKILL after a grace period.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
HOST = "127.0.0.1"


class ServeSettings(BaseSettings):
    """Settings of services (`SERVE_*`, read by the Runner, the gateway and `mlops serve`)."""

    model_config = SettingsConfigDict(env_prefix="SERVE_", case_sensitive=False, extra="ignore")

    stop_grace: float = Field(10.0, ge=0, le=600, description="seconds between SIGTERM and SIGKILL at stop")
    check_interval: float = Field(5.0, gt=0, le=3600, description="seconds between the gateway's checks")
    health_timeout: float = Field(3.0, gt=0, le=300, description="seconds a health check may take")
    restart_backoff: float = Field(2.0, gt=0, le=3600, description="first wait before restarting a dead one")
    restart_backoff_max: float = Field(300.0, gt=0, le=86400, description="longest wait between restarts")
    max_body_bytes: int = Field(1 << 20, gt=0, description="largest request body serve-model accepts")


class ServiceError(RuntimeError):
    """A service cannot be started, found or stopped; the message says what to do."""


@dataclass
class Service:
    """One service's record (service.json)."""

    name: str
    run: str
    step: str
    port: int
    health: str
    keep: bool
    pid: int = 0
    create_time: float = 0.0
    """The process's start time (psutil), so that a reused pid is never taken for the service."""
    started: float = field(default_factory=time.time)
    state: str = "starting"  # starting | healthy | unhealthy | dead | restarting
    owner_pid: int = 0
    """The Runner that started it: a service it does not keep is stopped when that process is gone."""
    restarts: int = 0
    next_restart: float = 0.0
    last_error: str = ""
    route: str | None = None
    """The model route registered for it (removed when it stops)."""
    launch: dict[str, Any] = field(default_factory=dict)
    """How to start it again (servehost's payload without secret values) and the secret names it needs."""

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def public(self, home: Path) -> dict[str, Any]:
        """What the CLI and the API show (no launch payload)."""
        return {
            "name": self.name,
            "run": self.run,
            "step": self.step,
            "pid": self.pid,
            "port": self.port,
            "url": self.url,
            "health": self.health,
            "state": self.state,
            "started": self.started,
            "keep": self.keep,
            "restarts": self.restarts,
            "route": self.route,
            "last_error": self.last_error,
            "log": str(log_path(home, self.name)),
        }


def serving_dir(home: Path) -> Path:
    return home / "serving"


def service_dir(home: Path, name: str) -> Path:
    check_name(name)
    return serving_dir(home) / name


def log_path(home: Path, name: str) -> Path:
    return service_dir(home, name) / "service.log"


def check_name(name: str) -> str:
    """`name` when it is a DNS-1123 label; ServiceError otherwise (it names a folder and a route)."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ServiceError(
            f"service name {str(name)[:80]!r} is not a DNS-1123 label: use lower-case letters, digits and "
            "'-' (at most 63, starting and ending with a letter or digit)"
        )
    return name


@contextlib.contextmanager
def locked(home: Path) -> Iterator[None]:
    """Serialise changes to the registry between the Runner, the gateway and the CLI."""
    folder = serving_dir(home)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(folder / ".lock", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def load(home: Path, name: str) -> Service | None:
    """The record of service `name`; None when there is none (or it cannot be read)."""
    try:
        data = json.loads((service_dir(home, name) / "service.json").read_text(encoding="utf-8"))
        return Service(**data)
    except (OSError, ValueError, TypeError):
        return None


def save(home: Path, svc: Service) -> None:
    folder = service_dir(home, svc.name)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = folder / "service.json.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(asdict(svc), f)
    os.replace(tmp, folder / "service.json")


def all_services(home: Path) -> list[Service]:
    """Every recorded service, by name."""
    folder = serving_dir(home)
    if not folder.is_dir():
        return []
    out = []
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and NAME_RE.match(entry.name) and (svc := load(home, entry.name)) is not None:
            out.append(svc)
    return out


def alive(svc: Service) -> bool:
    """Whether the service's own process runs (not a zombie, not another process with its pid)."""
    if svc.pid <= 0:
        return False
    try:
        p = psutil.Process(svc.pid)
        return abs(p.create_time() - svc.create_time) < 0.5 and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def free_socket(port: int = 0) -> socket.socket:
    """A listening TCP socket on loopback (`port` 0: a free one), inherited by the service's process."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise ServiceError(f"cannot listen on {HOST}:{port}: {e.strerror or e}") from None
    return sock


def spawn(
    home: Path,
    svc: Service,
    payload: dict[str, Any],
    secrets: Mapping[str, str],
    sock: socket.socket | None = None,
) -> subprocess.Popen[bytes]:
    """Start the service's process (its own session) from servehost's `payload`, giving it `secrets`
    through its stdin (never a file); records its pid. An `app` inherits the listening socket `sock`
    (made here on the service's port when not given), so the port is the service's before it starts."""
    from mlops_nocode.runtime.secrets import fill

    folder = service_dir(home, svc.name)
    tmp = folder / "tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True, mode=0o700)
    if payload.get("app") and sock is None:
        sock = free_socket(svc.port)
    full = {**payload, "secrets": dict(secrets)}
    full["env"] = {**fill(payload.get("env", {}), dict(secrets)), **secrets}
    if sock is not None:
        full["fd"] = sock.fileno()
    with open(log_path(home, svc.name), "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlops_nocode.runtime.servehost", "--service", svc.name],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp,
            env=_host_env(),
            start_new_session=True,
            pass_fds=(sock.fileno(),) if sock is not None else (),
        )
    try:
        assert proc.stdin is not None
        with contextlib.suppress(OSError):
            proc.stdin.write(json.dumps(full).encode())
            proc.stdin.close()
    finally:
        if sock is not None:
            sock.close()
    svc.pid = proc.pid
    with contextlib.suppress(psutil.Error):
        svc.create_time = psutil.Process(proc.pid).create_time()
    return proc


def _host_env() -> dict[str, str]:
    """servehost's own environment before it takes the service's (it needs only to find Python's modules)."""
    keep = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "SYSTEMROOT")
    return {k: v for k, v in os.environ.items() if k in keep}


def stop(home: Path, name: str, grace: float | None = None) -> Service | None:
    """Stop service `name` (SIGTERM to its process group, SIGKILL after `grace` seconds), remove its model
    route and its record; the record it had, or None when there was none."""
    with locked(home):
        svc = load(home, name)
        if svc is None:
            return None
        kill_group(svc, ServeSettings().stop_grace if grace is None else grace)
        if svc.route:
            _remove_route(home, svc.route, name)
        folder = service_dir(home, name)
        with contextlib.suppress(OSError):
            (folder / "service.json").unlink()
        shutil.rmtree(folder / "tmp", ignore_errors=True)
        return svc


def kill_group(svc: Service, grace: float) -> None:
    """SIGTERM the service's process group, then SIGKILL what is left after `grace` seconds."""
    if not alive(svc):
        _signal_group(svc.pid, signal.SIGKILL)  # a dead leader may have left its group behind
        return
    _signal_group(svc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _group_alive(svc.pid):
        time.sleep(0.05)
    _signal_group(svc.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and _group_alive(svc.pid):
        time.sleep(0.05)


def _signal_group(pgid: int, sig: int) -> None:
    if pgid > 0:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    """Whether a process of group `pgid` still runs (zombies do not count)."""
    for p in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE:
                return True
        except (OSError, psutil.Error):
            continue
    return False


def _remove_route(home: Path, route: str, service: str) -> None:
    from mlops_nocode.integrations.litellm.routes import load_routes, remove_route

    with contextlib.suppress(Exception):
        existing = load_routes(home).get(route)
        if existing is not None and existing.service == service:
            remove_route(home, route)
