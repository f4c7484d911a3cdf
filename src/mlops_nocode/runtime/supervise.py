"""Supervision of the services in the registry (runtime/services.py): health checks, the restart of a
kept service whose process died (with exponential backoff), and the stop of a service nobody keeps
whose Runner is gone. The gateway (`mlops up`) runs `Supervisor` in a background thread; `mlops serve
list` runs one `check` pass to show fresh states.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import httpx
import psutil

from mlops_nocode.runtime import services as sv

log = logging.getLogger("mlops.serving")

SecretSource = Callable[[Iterable[str]], dict[str, str]]
"""Secret names -> their values (the gateway's vault); a name it cannot give is left out."""


def health_of(svc: sv.Service, timeout: float) -> tuple[bool, str]:
    """Whether the service answers 200 at its health path now, and what it answered."""
    try:
        with httpx.Client(timeout=timeout, trust_env=False) as client:
            r = client.get(svc.url + svc.health)
        return r.status_code == 200, f"{r.status_code} {r.reason_phrase}"
    except httpx.HTTPError as e:
        return False, type(e).__name__


def _owner_gone(svc: sv.Service) -> bool:
    if svc.owner_pid <= 0:
        return True
    try:
        return psutil.Process(svc.owner_pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def check(
    home: Path, secrets: SecretSource | None = None, restart: bool = False, now: float | None = None
) -> list[sv.Service]:
    """One pass over the registry: update each service's state; stop services nobody keeps whose Runner
    is gone; with `restart`, start a dead kept service again once its backoff has passed."""
    settings = sv.ServeSettings()
    out = []
    for svc in sv.all_services(home):
        now = time.time() if now is None else now
        if not svc.keep and _owner_gone(svc):
            with contextlib.suppress(Exception):
                sv.stop(home, svc.name)
            log.info("stopped service %s: the run that started it is over", svc.name)
            continue
        if sv.alive(svc):
            if svc.state == "starting":
                out.append(svc)
                continue
            ok, answer = health_of(svc, settings.health_timeout)
            state, error = ("healthy", "") if ok else ("unhealthy", f"health {svc.health}: {answer}")
        else:
            state, error = "dead", svc.last_error or "its process is not running"
            if restart and svc.keep and now >= svc.next_restart:
                svc = _restart(home, svc, secrets, settings)
                out.append(svc)
                continue
        if (state, error) != (svc.state, svc.last_error):
            svc = _update(home, svc.name, state=state, last_error=error) or svc
        out.append(svc)
    return out


def _update(home: Path, name: str, **fields: object) -> sv.Service | None:
    """Change fields of a record (under the lock, re-read first: a stop may have removed it)."""
    with sv.locked(home):
        svc = sv.load(home, name)
        if svc is None:
            return None
        for key, value in fields.items():
            setattr(svc, key, value)
        sv.save(home, svc)
        return svc


def _restart(
    home: Path, svc: sv.Service, secrets: SecretSource | None, settings: sv.ServeSettings
) -> sv.Service:
    """Start a dead kept service again, on its port; the next try waits twice as long (capped)."""
    wait = min(settings.restart_backoff_max, settings.restart_backoff * 2 ** min(svc.restarts, 30))
    with sv.locked(home):
        current = sv.load(home, svc.name)
        if current is None or sv.alive(current):
            return current or svc
        svc = current
        payload = dict(svc.launch.get("payload") or {})
        names = list(svc.launch.get("secrets") or [])
        values = dict(secrets(names)) if secrets is not None and names else {}
        missing = [n for n in names if n not in values]
        svc.restarts += 1
        svc.next_restart = time.time() + wait
        if missing:
            svc.state, svc.last_error = "dead", f"cannot restart: secret(s) {', '.join(missing)} not stored"
        elif not payload:
            svc.state, svc.last_error = "dead", "cannot restart: no launch record"
        else:
            sv.kill_group(svc, 0)
            try:
                sv.spawn(home, svc, payload, values)
                svc.state, svc.last_error = "starting", ""
                log.warning("restarted service %s (restart %d)", svc.name, svc.restarts)
            except (OSError, sv.ServiceError) as e:
                svc.state, svc.last_error = "dead", f"restart failed: {e}"
        svc.owner_pid = os.getpid()
        sv.save(home, svc)
    if svc.state == "starting":
        _wait_started(home, svc, settings)
    return sv.load(home, svc.name) or svc


def _wait_started(home: Path, svc: sv.Service, settings: sv.ServeSettings, timeout: float = 60.0) -> None:
    """After a restart: mark it healthy once it answers (or dead when it dies first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not sv.alive(svc):
            _update(home, svc.name, state="dead", last_error="it died after a restart (see its log)")
            return
        ok, _ = health_of(svc, settings.health_timeout)
        if ok:
            _update(home, svc.name, state="healthy", last_error="")
            return
        time.sleep(0.2)
    _update(home, svc.name, state="unhealthy", last_error=f"no 200 at {svc.health} after the restart")


class Supervisor:
    """The gateway's background thread: `check(restart=True)` every SERVE_CHECK_INTERVAL seconds."""

    def __init__(self, home: Path, secrets: SecretSource | None = None) -> None:
        self.home, self.secrets = home, secrets
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="service-supervisor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        interval = sv.ServeSettings().check_interval
        while not self._stop.is_set():
            try:
                check(self.home, self.secrets, restart=True)
            except Exception:  # one bad pass never ends supervision
                log.exception("service supervision pass failed")
            self._stop.wait(interval)
