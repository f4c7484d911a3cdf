"""/api/v1/services: the services serve steps started on the gateway's machine (MLOPS_HOME/serving/),
with their health; DELETE stops one (its processes, its record and its model route)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict

from mlops_nocode.api.state import Gateway, gateway
from mlops_nocode.runtime import services as sv

router = APIRouter(prefix="/services", tags=["services"])
EXAMPLE: dict[str, Any] = {
    "name": "iris-model",
    "run": "20261130-152054-782b28",
    "step": "serve",
    "pid": 41327,
    "port": 37431,
    "url": "http://127.0.0.1:37431",
    "health": "/health",
    "state": "healthy",
    "started": 1796051549.34,
    "keep": True,
    "restarts": 0,
    "route": None,
    "last_error": "",
    "log": "/srv/mlops/serving/iris-model/service.log",
}


class ServiceOut(BaseModel):
    """A service a serve step started: where it answers and how it is doing."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE]})

    name: str
    run: str
    step: str
    pid: int
    port: int
    url: str
    health: str
    state: str
    started: float
    keep: bool
    restarts: int
    route: str | None
    last_error: str
    log: str


Name = Path(pattern=sv.NAME_RE.pattern, max_length=63, description="the service's name (a DNS-1123 label)")


@router.get("", response_model=list[ServiceOut])
async def list_services(gw: Gateway = Depends(gateway)) -> list[dict[str, Any]]:
    """Every service: name, run, step, pid, port, url, health path, state (healthy, unhealthy, starting,
    dead), started (epoch seconds), keep, restarts, model route, last error, log file."""
    home = gw.settings.home
    services = await run_in_threadpool(sv.all_services, home)
    return [s.public(home) for s in services]


@router.delete("/{name}", response_model=ServiceOut, responses={404: {"description": "no such service"}})
async def stop_service(name: str = Name, gw: Gateway = Depends(gateway)) -> dict[str, Any]:
    """Stop a service: SIGTERM to its process group, SIGKILL after SERVE_STOP_GRACE seconds; its record
    and its model route are removed. Answers the record it had."""
    home = gw.settings.home
    svc = await run_in_threadpool(sv.stop, home, name)
    if svc is None:
        known = ", ".join(s.name for s in sv.all_services(home)) or "none"
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no service {name} (running: {known})")
    out = svc.public(home)
    out["state"] = "stopped"
    return out
