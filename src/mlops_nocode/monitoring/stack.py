"""The local monitoring stack (`mlops monitoring up|down|status`): Debian's `prometheus` scraping the
gateway, and `prometheus-alertmanager` (when installed) posting alerts to it, on 127.0.0.1, each in its
own session, with configuration, storage, logs and state under MLOPS_HOME/monitoring/."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlops_nocode.monitoring import promconfig, stackkeys
from mlops_nocode.monitoring.files import shipped_monitoring
from mlops_nocode.settings import Settings, write_private
from mlops_nocode.spec import Problem, SpecError

FOLDER = "monitoring"
STATE_FILE = "stack.json"
PACKAGES = "apt-get install prometheus prometheus-alertmanager"
ALERTMANAGER_NAMES = ("prometheus-alertmanager", "alertmanager")


class StackSettings(BaseSettings):
    """MONITORING_* environment variables: the binaries, default ports and waits of the local stack."""

    model_config = SettingsConfigDict(env_prefix="MONITORING_", extra="ignore")

    prometheus_binary: str = Field(default="prometheus", description="Prometheus's binary (name or path)")
    alertmanager_binary: str | None = Field(
        default=None, description="Alertmanager's binary; default: prometheus-alertmanager, else alertmanager"
    )
    prometheus_port: int = Field(default=9090, ge=1, le=65535)
    alertmanager_port: int = Field(default=9093, ge=1, le=65535)
    scrape_interval: str = Field(default="15s", description="how often the gateway is scraped and rules run")
    ready_timeout: float = Field(default=60.0, gt=0, description="seconds to wait for /-/ready")


@dataclass
class Proc:
    """One process the stack started."""

    name: str
    pid: int
    port: int
    url: str
    log: str
    created: float  # psutil's create_time: a reused pid is not ours

    def alive(self) -> bool:
        import psutil

        try:
            p = psutil.Process(self.pid)
            return abs(p.create_time() - self.created) < 1.0 and p.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False


@dataclass
class StackState:
    """What `up` started (MLOPS_HOME/monitoring/stack.json; it holds no secret)."""

    gateway: str
    prometheus: Proc
    alertmanager: Proc | None
    scrape_interval: str
    started: float
    key_ids: list[str] = field(default_factory=list)
    key_files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def procs(self) -> list[Proc]:
        return [p for p in (self.prometheus, self.alertmanager) if p is not None]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def folder(home: Path) -> Path:
    return home / FOLDER


def read_state(home: Path) -> StackState | None:
    """The recorded stack of `home`, or None."""
    try:
        data = json.loads((folder(home) / STATE_FILE).read_text(encoding="utf-8"))
        am = data.pop("alertmanager")
        return StackState(
            prometheus=Proc(**data.pop("prometheus")), alertmanager=Proc(**am) if am else None, **data
        )
    except (OSError, ValueError, TypeError, KeyError):
        return None


def binaries(settings: StackSettings, path: str | None = None) -> tuple[str, str | None]:
    """Prometheus's binary (SpecError naming the Debian packages when it is missing) and Alertmanager's
    (None when it is not installed)."""
    prometheus = shutil.which(settings.prometheus_binary, path=path)
    if prometheus is None:
        raise SpecError(
            Problem(
                f"Prometheus is not installed: no {settings.prometheus_binary!r} on PATH",
                "PATH (or MONITORING_PROMETHEUS_BINARY)",
                f"install Debian's packages: `{PACKAGES}`",
            )
        )
    names = (settings.alertmanager_binary,) if settings.alertmanager_binary else ALERTMANAGER_NAMES
    return prometheus, next((found for n in names if (found := shutil.which(n, path=path))), None)


def check_port(port: int, option: str) -> None:
    """SpecError naming `option` when 127.0.0.1:port cannot be listened on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as e:
            raise SpecError(
                Problem(
                    f"cannot listen on 127.0.0.1:{port}: {e.strerror or e}",
                    option,
                    f"stop what uses port {port}, or pick another with {option}",
                )
            ) from None


def ready(url: str, timeout: float = 2.0) -> bool:
    """Whether a Prometheus or Alertmanager at `url` answers `/-/ready`."""
    try:
        return httpx.get(f"{url}/-/ready", timeout=timeout, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def check_gateway(target: promconfig.GatewayTarget, token: str, where: str) -> str | None:
    """A note when the gateway does not answer (Prometheus will show it down); SpecError when it refuses
    the credential."""
    url = f"{target.url}/metrics"
    try:
        r = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10, trust_env=False)
    except httpx.HTTPError as e:
        return f"the gateway does not answer at {url} ({type(e).__name__}): it is scraped once it does"
    if r.status_code in (401, 403):
        raise SpecError(
            Problem(
                f"the gateway at {target.url} refused the scrape credential (HTTP {r.status_code})",
                where,
                "give a read key of that gateway with --key-file, or run this with the gateway's MLOPS_HOME "
                "(and DATABASE_URL)",
            )
        )
    if r.status_code != 200:
        return f"GET {url} answered HTTP {r.status_code}: is it an MLOps gateway?"
    return None


def _start(name: str, argv: list[str], port: int, log: Path, cwd: Path) -> Proc:
    import psutil

    with open(log, "ab") as out:
        os.chmod(log, 0o600)
        proc = subprocess.Popen(
            argv, cwd=str(cwd), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, env={k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "TZ")},
        )  # fmt: skip
    created = psutil.Process(proc.pid).create_time()
    return Proc(name, proc.pid, port, f"http://127.0.0.1:{port}", str(log), created)


def stop(procs: list[Proc], timeout: float = 10.0) -> None:
    """SIGTERM to each process's group (all at once), SIGKILL to the groups left after `timeout`."""
    import psutil

    family: list[psutil.Process] = []
    groups = [p.pid for p in procs if p.alive()]
    for pid in groups:
        with contextlib.suppress(psutil.Error):
            parent = psutil.Process(pid)
            family += [parent, *parent.children(recursive=True)]
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    _, alive = psutil.wait_procs(family, timeout=timeout)
    if alive:
        for pid in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=5)


def _log_tail(path: str, lines: int = 12) -> str:
    try:
        return "\n".join(Path(path).read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _rules(home: Path) -> list[str]:
    """Copy the shipped alert rules (deploy/monitoring/prometheus/rules/*.yml) beside the configuration."""
    rules = folder(home) / "rules"
    shutil.rmtree(rules, ignore_errors=True)
    rules.mkdir(parents=True)
    shipped = sorted((shipped_monitoring() / "prometheus" / "rules").glob("*.yml"))
    for f in shipped:
        shutil.copyfile(f, rules / f.name)
    return [str(rules / "*.yml")] if shipped else []


def up(
    home: Path,
    gateway: str,
    *,
    key_file: Path | None,
    prometheus_port: int,
    alertmanager_port: int,
    scrape_interval: str,
    settings: StackSettings,
    workers: list[str] | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> tuple[StackState, bool]:
    """Start the stack and wait until it is ready: (state, False); (state, True) when it already runs.
    SpecError (located) for what stops it starting; then nothing is left running or created."""
    current = read_state(home)
    if current is not None and current.prometheus.alive():
        return current, True
    if current is not None:  # stopped since: clean up what it left (processes, keys) first
        down(home)
    target = promconfig.gateway_target(gateway)
    promconfig.check_duration(scrape_interval, "--scrape-interval")
    worker_targets = [promconfig.worker_target(w) for w in workers or []]
    prometheus, alertmanager = binaries(settings)
    if alertmanager is not None and alertmanager_port == prometheus_port:
        raise SpecError(
            Problem("Prometheus and Alertmanager cannot share a port", "--alertmanager-port", "pick another")
        )
    check_port(prometheus_port, "--prometheus-port")
    if alertmanager is not None:
        check_port(alertmanager_port, "--alertmanager-port")
    where = "--key-file" if key_file is not None else "the keys created for the stack"
    base = folder(home)
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    gw_settings = _gateway_settings(home)
    creds = stackkeys.given(key_file) if key_file is not None else stackkeys.create(base, gw_settings)
    started: list[Proc] = []
    try:
        note = check_gateway(target, creds.token(), where)
        am_port = alertmanager_port if alertmanager is not None else None
        config = promconfig.prometheus_config(
            target,
            creds.prometheus,
            prometheus_port,
            alertmanager_port=am_port,
            rule_files=_rules(home),
            scrape_interval=scrape_interval,
            workers=worker_targets,
        )
        (base / "prometheus.yml").write_text(config, encoding="utf-8")
        if alertmanager is not None:
            am_config = promconfig.alertmanager_config(target, creds.alertmanager)
            (base / "alertmanager.yml").write_text(am_config, encoding="utf-8")
            progress(f"starting Alertmanager on 127.0.0.1:{alertmanager_port}")
            argv = [
                alertmanager,
                f"--config.file={base / 'alertmanager.yml'}",
                f"--storage.path={base / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{alertmanager_port}",
                "--cluster.listen-address=",  # no gossip port: a single Alertmanager
            ]
            started.append(_start("alertmanager", argv, alertmanager_port, base / "alertmanager.log", base))
        progress(f"starting Prometheus on 127.0.0.1:{prometheus_port}")
        argv = [
            prometheus,
            f"--config.file={base / 'prometheus.yml'}",
            f"--storage.tsdb.path={base / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
        ]
        started.append(_start("prometheus", argv, prometheus_port, base / "prometheus.log", base))
        _wait_ready(started, settings.ready_timeout, progress)
    except BaseException:
        stop(started)
        stackkeys.forget(gw_settings, creds.key_ids, creds.written)
        raise
    prom, am = started[-1], (started[0] if alertmanager is not None else None)
    notes = [n for n in (note,) if n]
    if alertmanager is None:
        notes.append(f"Alertmanager is not installed: alerts are evaluated but not sent (`{PACKAGES}`)")
    state = StackState(
        target.url,
        prom,
        am,
        scrape_interval,
        time.time(),
        creds.key_ids,
        [str(f) for f in creds.written],
        notes,
    )
    write_private(base / STATE_FILE, json.dumps(state.to_json(), indent=2))
    return state, False


def _gateway_settings(home: Path) -> Settings:
    """The gateway's settings (its DATABASE_URL) for this MLOPS_HOME; SpecError when they are invalid."""
    try:
        return Settings(mlops_home=home)
    except ValueError as e:
        raise SpecError(
            Problem(f"invalid settings: {e}", "environment", "fix or unset the variable")
        ) from None


def _wait_ready(procs: list[Proc], timeout: float, progress: Callable[[str], None]) -> None:
    deadline = time.monotonic() + timeout
    for p in procs:
        progress(f"waiting for {p.name} at {p.url}/-/ready")
        while not ready(p.url):
            if not p.alive() or time.monotonic() > deadline:
                why = "exited" if not p.alive() else f"was not ready within {timeout:g}s"
                raise SpecError(
                    Problem(
                        f"{p.name} {why}; the end of its log ({p.log}):\n{_log_tail(p.log)}",
                        "mlops monitoring up",
                        "read the log; if a port is taken, pick another with --prometheus-port or "
                        "--alertmanager-port",
                    )
                )
            time.sleep(0.2)


def down(home: Path) -> StackState | None:
    """Stop what `up` started (process groups), revoke the keys it created and delete their files; the
    state that was recorded (its `key_ids`: those that could not be revoked), or None when nothing was.
    Storage is kept for the next `up`."""
    state = read_state(home)
    if state is None:
        return None
    stop(state.procs())
    left = stackkeys.forget(_gateway_settings(home), state.key_ids, state.key_files)
    (folder(home) / STATE_FILE).unlink(missing_ok=True)
    state.key_ids = left  # what could not be revoked (its database is gone or unreachable)
    return state


def status(home: Path) -> dict[str, Any]:
    """What runs: each process (running, ready), and the gateway's scrape target as Prometheus sees it."""
    state = read_state(home)
    if state is None:
        return {"running": False}
    answer: dict[str, Any] = {"running": state.prometheus.alive(), "gateway": state.gateway}
    for p in (state.prometheus, state.alertmanager):
        if p is not None:
            alive = p.alive()
            answer[p.name] = {
                "url": p.url,
                "pid": p.pid,
                "running": alive,
                "ready": alive and ready(p.url),
                "log": p.log,
            }
    targets = _targets(state.prometheus.url) if answer["prometheus"]["ready"] else []
    answer["targets"] = targets
    answer["gateway_target"] = next((t for t in targets if t["job"] == promconfig.GATEWAY_JOB), None)
    answer["notes"] = state.notes
    return answer


def _targets(url: str) -> list[dict[str, Any]]:
    """Prometheus's scrape targets (/api/v1/targets): job, instance, health and last error of each."""
    try:
        body = httpx.get(f"{url}/api/v1/targets", timeout=5, trust_env=False).json()
        return [
            {
                "job": t["labels"]["job"],
                "instance": t["labels"].get("instance"),
                "health": t.get("health"),
                "last_error": t.get("lastError") or None,
                "scrape_url": t.get("scrapeUrl"),
            }
            for t in body["data"]["activeTargets"]
        ]
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return []
