"""How the Runner launches attempts: the run's sandbox, its warm fork server, and the executor of each
runtime (made on first use, closed when the run ends), which report the attempts' ends back."""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from pathlib import Path
from typing import Any

from mlops_nocode.compiler.plan import Plan, PlanStep
from mlops_nocode.runtime import attempt as att
from mlops_nocode.runtime.executors import ON_RAY, Executor, executor_class
from mlops_nocode.runtime.executors.base import ExecContext
from mlops_nocode.runtime.forkserver import ForkServer
from mlops_nocode.runtime.limits import OutputLimits
from mlops_nocode.runtime.sandbox import Confinement, RunSandbox, for_run, run_env, step_env


def placed_on(step: PlanStep) -> str:
    """The provider a step was placed on (`local` for a plan placed before placement existed)."""
    placement = step.placement if isinstance(step.placement, dict) else {}
    return str(placement.get("provider") or "local")


def executor_key(runtime: str, provider: str) -> str:
    """Which of a run's executors runs a step: one per runtime, and one per runtime run as Ray tasks."""
    return f"ray:{runtime}" if provider == "ray" and runtime in ON_RAY else runtime


class Launching:
    """Mixed into the Runner, whose attributes these are."""

    plan: Plan
    home: Path
    run_id: str
    run_dir: Path
    limits: OutputLimits
    max_parallel: int
    environ: dict[str, str]
    confinement: Confinement
    _own: tuple[PlanStep, ...]
    _box: RunSandbox | None
    _server: ForkServer | None
    _executors: dict[str, Executor]
    _ctx: ExecContext | None
    _q: queue.Queue[tuple[str, int, str | None]]
    _cancel: threading.Event

    @property
    def box(self) -> RunSandbox:
        """What this run's steps may see (set when the run starts)."""
        if self._box is None:
            # the process's own environment (PATH, PYTHONPATH ...): `environ` is where secrets come from
            self._box = for_run(self.confinement, self.home, self.run_dir, os.environ, self._sources())
        return self._box

    def _sources(self) -> list[str]:
        """The folders steps import and read code from: the plan's Python path and playbook folders."""
        return [*self.plan.python_path, *sorted({s.spec_dir for s in self.plan.steps if s.spec_dir})]

    def _fork_server(self) -> ForkServer:
        """The warm fork server, started on first use with every step module of the plan preloaded; it
        runs command steps too (a pre-forked child confines itself and execs the command)."""
        if self._server is None:
            preload = sorted(
                {s.entrypoint.split(":")[0] for s in self._own if s.entrypoint and s.code is None}
            )
            tmp = self.run_dir / "tmp"
            tmp.mkdir(mode=0o700, exist_ok=True)
            self._server = ForkServer(
                self._exited,
                ["mlops_nocode.runtime.zygote", *preload],
                self.run_dir / "forkserver.log",
                idle=min(self.max_parallel, len(self._own)) + 1,
                log_dir=self.run_dir / "steps",
                env=step_env(run_env(self.confinement, os.environ), tmp, {}),  # = self.box.env
                box=self._server_box,  # the grants are computed while the server's interpreter starts
            )
            self._server.wait_ready()
        return self._server

    def _server_box(self) -> dict[str, Any] | None:
        """The fork server's confinement (None: unconfined), as forkserver.py's `box` says."""
        box = self.box
        if not box.confined:
            return None
        return {"abi": box.confinement.abi, "server": box.server_grants(), "step": box.shared}

    def _exited(self, job: str, code: int, result: str | None) -> None:
        if self._ctx is None or not self._ctx.subjobs.deliver(job, code, result):
            self._q.put((job, code, result))

    def _executor(self, runtime: str, provider: str = "local") -> Executor:
        """The run's executor of `runtime` for steps placed on `provider` (executors/), made on first use."""
        key = executor_key(runtime, provider)
        ex = self._executors.get(key)
        if ex is None:
            if self._ctx is None:
                self._ctx = ExecContext(
                    run_id=self.run_id,
                    run_dir=self.run_dir,
                    home=self.home,
                    box_of=lambda: self.box,
                    limits=self.limits,
                    done=self._exited,
                    fork_server=self._fork_server,
                    cancelled=self._cancel,
                    environ=self.environ,
                    python_path=tuple(self._sources()),
                    confinement=self.confinement,
                )
            ex = self._executors[key] = executor_class(runtime, provider)(self._ctx)
        return ex

    def _close_executors(self) -> None:
        for ex in self._executors.values():
            with contextlib.suppress(Exception):  # one executor's trouble never keeps the others open
                ex.close()

    def _node_of(self, a: att.Attempt) -> dict[str, str] | None:
        """Where an ended attempt ran, for executors that know (Ray: the node's id, ip and hostname)."""
        where = getattr(self._executors.get(executor_key(a.step.runtime, placed_on(a.step))), "where", None)
        return where(a) if where is not None else None

    def _kill(self, a: att.Attempt, sig: int) -> None:
        ex = self._executors.get(executor_key(a.step.runtime, placed_on(a.step)))
        if ex is not None:
            ex.cancel(a, sig)
