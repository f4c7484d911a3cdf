"""`runtime: serve`: the step starts a long-running HTTP service, waits until its health path answers 200,
and returns its endpoint ({"url": ..., "service": NAME}) as the value of its `endpoint` outputs.

The service is recorded in the registry under MLOPS_HOME/serving/ (runtime/services.py) and runs as its
own confined process (runtime/servehost.py) in its own session, so it outlives the attempt. When the run
ends (`close`), the run's services are stopped unless the section keeps them (`keep`); kept ones are
supervised by the gateway (runs/supervise.py) and stopped with `mlops serve stop`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from typing import Any, ClassVar

from pydantic import ValidationError

from mlops_nocode.runtime import services as sv
from mlops_nocode.runtime.attempt import Attempt, StepFailure, describe_exit, tail
from mlops_nocode.runtime.executors.base import ExecContext
from mlops_nocode.runtime.executors.jobs import StepThread, Stopped, ThreadExecutor
from mlops_nocode.runtime.sandbox import step_env
from mlops_nocode.spec.expressions import EXPR_RE, apply_filter
from mlops_nocode.spec.serve import ServeRuntime

TRUE = frozenset({"true", "1", "yes", "on"})


class ServeExecutor(ThreadExecutor):
    """Starts serve steps' services on this machine (the `local` provider)."""

    runtime: ClassVar[str] = "serve"
    providers = frozenset({"local"})

    def __init__(self, ctx: ExecContext) -> None:
        super().__init__(ctx)
        self.started: dict[str, subprocess.Popen[bytes]] = {}

    def body(self, job: StepThread) -> dict[str, Any]:
        a = job.a
        try:
            cfg = ServeRuntime.model_validate(a.step.config or {})
        except ValidationError as e:
            raise StepFailure(f"the serve section is invalid: {e.errors()[0]['msg']}") from None
        params = a.step.params
        name = _text(cfg.name, a, params) if cfg.name else default_name(a.step.id, self.ctx.run_id)
        try:
            sv.check_name(name)
        except sv.ServiceError as e:
            raise StepFailure(f"serve.name: {e}") from None
        keep = _keep(cfg.keep, params)
        home = self.ctx.home
        with sv.locked(home):
            old = sv.load(home, name)
            if old is not None and sv.alive(old):
                raise StepFailure(
                    f"service {name!r} already runs (run {old.run}, step {old.step}, {old.url}): stop it "
                    f"with `mlops serve stop {name}`, or give this step another serve.name"
                )
            if old is not None:
                sv.kill_group(old, 0)  # what a dead one left in its group
            sock = sv.free_socket()  # an app inherits it; a command is told its port and binds it itself
            port = int(sock.getsockname()[1])
            if cfg.command:
                sock.close()
            svc = sv.Service(
                name=name, run=self.ctx.run_id, step=a.step.id, port=port, health=cfg.health, keep=keep
            )
            svc.owner_pid = os.getpid()
            folder = sv.service_dir(home, name)
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            sv.log_path(home, name).write_bytes(b"")
            payload = self._payload(a, cfg, svc)
            svc.launch = {"payload": payload, "secrets": sorted(a.secrets)}
            try:
                proc = sv.spawn(home, svc, payload, a.secrets, sock=None if cfg.command else sock)
            except (OSError, sv.ServiceError) as e:
                raise StepFailure(f"cannot start service {name!r}: {e}") from None
            self.started[name] = proc
            sv.save(home, svc)
        job.log(f"service {name}: pid {svc.pid}, {svc.url} (log: {sv.log_path(home, name)})")
        try:
            _wait_healthy(job, svc, proc, cfg.ready_timeout)
            if cfg.route is not None:
                svc.route = self._route(a, cfg, svc)
        except BaseException:
            sv.stop(home, name, grace=2.0)
            _reap(proc)
            raise
        with sv.locked(home):
            svc.state = "healthy"
            sv.save(home, svc)
        job.log(
            f"service {name} is healthy at {svc.url}{cfg.health}" + (" (kept after the run)" if keep else "")
        )
        value = {"url": svc.url, "service": name}
        return {out: value for out, kind in a.step.outputs.items() if kind == "endpoint"}

    def _payload(self, a: Attempt, cfg: ServeRuntime, svc: sv.Service) -> dict[str, Any]:
        """servehost's payload, without secret values (placeholders stay; spawn fills the env's)."""
        from mlops_nocode.integrations.litellm.routes import routes_env

        home, box = self.ctx.home, self.ctx.box
        tmp = sv.service_dir(home, svc.name) / "tmp"
        inputs = {n: str(rec["path"]) for n, rec in a.inputs.items() if rec.get("path")}
        env = {k: _text(v, a, a.step.params, secrets=False) for k, v in cfg.env.items()}
        extra = {
            "PYTHONUNBUFFERED": "1",
            **env,
            **routes_env(home),
            "MLOPS_RUN_ID": self.ctx.run_id,
            "MLOPS_STEP_ID": a.step.id,
            "MLOPS_SERVICE": svc.name,
            "MLOPS_SERVE_HOST": sv.HOST,
            "MLOPS_SERVE_PORT": str(svc.port),
            **({"MLOPS_SPEC_DIR": a.step.spec_dir} if a.step.spec_dir else {}),
        }
        payload: dict[str, Any] = {
            "inputs": inputs,
            "params": a.step.params,
            "env": step_env(box.env, tmp, extra),
            "cwd": str(tmp),
            "python_path": list(self.ctx.python_path),
            "abi": box.confinement.abi if box.confined else 0,
            "grants": [*box.software, (str(tmp), "rw"), *((p, "read") for p in inputs.values())]
            if box.confined
            else [],
        }
        if cfg.app:
            payload["app"] = cfg.app
        else:
            argv = [_text(x, a, a.step.params, secrets=False) for x in cfg.command or []]
            if argv[0] == "python":
                argv[0] = sys.executable
            payload["argv"] = argv
        return payload

    def _route(self, a: Attempt, cfg: ServeRuntime, svc: sv.Service) -> str:
        """Register the service as a model route; its name."""
        from mlops_nocode.integrations.litellm.routes import ModelRoute, RouteError, load_routes, save_route

        assert cfg.route is not None
        name = _text(cfg.route.name, a, a.step.params, secrets=False)
        model = _text(cfg.route.model, a, a.step.params, secrets=False)
        home = self.ctx.home
        existing = load_routes(home).get(name)
        if existing is not None and (
            existing.source != "serving" or _other_alive(home, existing.service, svc.name)
        ):
            raise StepFailure(
                f"serve.route.name: route {name!r} exists already ({existing.source}"
                f"{', service ' + existing.service if existing.service else ''}): choose another route name"
            )
        try:
            route = ModelRoute(
                name=name,
                model=model,
                kind=cfg.route.kind,
                api_base=svc.url + "/v1",
                source="serving",
                service=svc.name,
            )
            save_route(home, route)
        except (ValidationError, RouteError) as e:
            raise StepFailure(f"serve.route: {e}") from None
        return name

    def close(self) -> None:
        """The run ended: stop its services that are not kept."""
        super().close()
        for name, proc in list(self.started.items()):
            svc = sv.load(self.ctx.home, name)
            if svc is not None and svc.run == self.ctx.run_id and (not svc.keep or svc.state != "healthy"):
                with contextlib.suppress(Exception):
                    sv.stop(self.ctx.home, name)
            if svc is None or not svc.keep:
                _reap(proc)
        self.started.clear()


def default_name(step_id: str, run_id: str) -> str:
    """`<step>-<run suffix>`: a DNS-1123 label naming the service of a step of a run."""
    slug = re.sub(r"[^a-z0-9]+", "-", step_id.lower()).strip("-")[:45].strip("-") or "service"
    suffix = re.sub(r"[^a-z0-9]+", "", run_id.lower())[-6:] or "0"
    return f"{slug}-{suffix}"


def _text(value: str, a: Attempt, params: dict[str, Any], secrets: bool = True) -> str:
    """`value` with `${{ params|inputs.X }}` substituted in one pass (secrets stay placeholders unless
    `secrets`: their values are given only to the service's process)."""

    def sub(m: re.Match[str]) -> str:
        ns, name = m[1], m[2]
        if ns == "params":
            v = params.get(name, "")
            text = v if isinstance(v, str) else json.dumps(v)
        elif ns == "inputs":
            text = str(a.inputs.get(name, {}).get("path", ""))
        elif ns == "secrets" and secrets:
            text = a.secrets.get(name, "")
        else:
            return m[0]
        return apply_filter(text, m[3])

    return EXPR_RE.sub(sub, value)


def _keep(keep: bool | str, params: dict[str, Any]) -> bool:
    if isinstance(keep, bool):
        return keep
    m = EXPR_RE.fullmatch(keep.strip())
    value = params.get(m[2]) if m else None
    return value is True or (isinstance(value, str) and value.strip().lower() in TRUE)


def _wait_healthy(job: StepThread, svc: sv.Service, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Poll the health path until it answers 200; StepFailure when the process ends or time runs out."""
    import httpx

    url = svc.url + svc.health
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while True:
            if job.stopping:
                raise Stopped("stopped")
            code = proc.poll()
            if code is not None:
                log = "\n".join(tail(sv.log_path(job.ctx.home, svc.name), 15))
                job.log(f"service {svc.name} ended; the end of its log:\n{log}")
                raise StepFailure(
                    f"service {svc.name!r} {describe_exit(code)} before it was ready: {_last_line(log)} "
                    f"(its log: {sv.log_path(job.ctx.home, svc.name)})"
                )
            try:
                r = client.get(url)
                if r.status_code == 200:
                    return
                last = f"{r.status_code} {r.reason_phrase}"
            except httpx.HTTPError as e:
                last = type(e).__name__
            if time.monotonic() >= deadline:
                raise StepFailure(
                    f"service {svc.name!r} did not answer 200 at {url} within {timeout:g} s (last: {last}): "
                    "raise serve.ready_timeout, or check its health path and its log "
                    f"({sv.log_path(job.ctx.home, svc.name)})"
                )
            job.wait(0.1)


def _last_line(log: str) -> str:
    lines = [line for line in log.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "it printed nothing"


def _other_alive(home: Any, service: str | None, me: str) -> bool:
    if not service or service == me:
        return False
    other = sv.load(home, service)
    return other is not None and sv.alive(other)


def _reap(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired, OSError):
        proc.wait(timeout=0.5 if proc.poll() is None else 0)
