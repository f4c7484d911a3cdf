"""Python and command steps placed on a `ray` target: each attempt is one Ray task on the cluster.

The Runner stays the scheduler (DAG, retries, timeouts, cancel, cache, events, redaction); Ray places and
runs the attempts. `start` submits the task (resources and scheduling options: ray_conn.py) and returns;
the task's end reaches the Runner through `ctx.done` from Ray's completion callback, exactly once.
What runs on the node: ray_task.py. Storage is `shared`: every node sees the driver's MLOPS_HOME, so a
task reads its inputs and writes its outputs, log and metrics in place, and the Runner follows them as
for a local step; a Python step's JSON result comes back through Ray's object store.

A cancel without force (SIGTERM) interrupts the task (`ray.cancel`); SIGKILL kills its worker
(`ray.cancel(force=True)`). A node or worker lost mid-step fails the attempt with a reason naming the
node, and the step's retries apply (Ray's own retries are off: `max_retries=0`).
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import json
import os
import signal
import threading
from concurrent.futures import Future
from typing import Any, ClassVar

from mlops_nocode.compiler.plan import PlanStep
from mlops_nocode.runtime import attempt as att
from mlops_nocode.runtime.executors import ray_conn
from mlops_nocode.runtime.executors.base import ExecContext
from mlops_nocode.runtime.sandbox import Confinement, RunSandbox, run_env

PROVIDERS: frozenset[str] = frozenset({"ray"})
STORAGE = ("shared",)
_TEMP = frozenset({"TMPDIR", "TMP", "TEMP", "HOME"})  # the attempt's private folder, as for local steps


class _RayExecutor(abc.ABC):
    runtime: ClassVar[str]
    providers: ClassVar[frozenset[str]] = PROVIDERS
    _function: ClassVar[str]

    def __init__(self, ctx: ExecContext) -> None:
        self.ctx = ctx
        self._lock = threading.Lock()
        self._refs: dict[str, Any] = {}
        self._stopping: dict[str, Any] = {}  # cancelled tasks: a later SIGKILL or close() forces them
        self._where: dict[str, dict[str, str]] = {}
        self._remote: Any = None
        self._box: RunSandbox | None = None

    def output_files(self, step: PlanStep) -> dict[str, str] | None:
        return None

    @abc.abstractmethod
    def payload(self, a: att.Attempt) -> dict[str, Any]:
        """What the task needs to run the attempt on its node."""

    @property
    def box(self) -> RunSandbox:
        """The steps' environment as local steps get it; no local confinement (Ray runs them), so none
        of the local sandbox's grants are computed (a quarter of a second per run)."""
        if self._box is None:
            conf = self.ctx.confinement or Confinement("none")
            unconfined = dataclasses.replace(conf, mode="none")
            self._box = RunSandbox(
                unconfined, run_env(conf, os.environ), (), (), self.ctx.run_dir, self.ctx.home
            )
        return self._box

    def start(self, a: att.Attempt) -> None:
        options = ray_conn.options_of(a.step)
        storage = str(options.get("storage") or "shared")
        if storage not in STORAGE:
            raise att.StepFailure(
                f"target option storage: {storage!r} is not supported by this version's Ray executor "
                "(it runs with `storage: shared`: every node sees the driver's MLOPS_HOME)"
            )
        ray_conn.connect(ray_conn.address_of(options, self.ctx.environ))
        opts = ray_conn.task_options(a.step, options)
        ray_conn.check_feasible(a.step, opts)
        payload = self.payload(a)
        payload["node_file"] = str(a.base.with_name(a.base.name + ".node.json"))
        fn = self._function_remote()
        try:
            ref = fn.options(**opts).remote(payload)
        except (TypeError, ValueError) as e:
            raise att.StepFailure(f"Ray refused the step's task: {e}") from None
        with self._lock:
            self._refs[a.job] = ref
        future: Future[Any] = ref.future()
        future.add_done_callback(lambda f: self._ended(a, f))

    def _function_remote(self) -> Any:
        if self._remote is None:
            self._remote = _remote_function(self._function)
        return self._remote

    def _ended(self, a: att.Attempt, f: Future[Any]) -> None:
        with self._lock:
            if self._refs.pop(a.job, None) is None:
                return  # already reported
        try:
            code, text, node = f.result()
            self._where[a.job] = node
        except BaseException as e:  # every end of the task becomes the attempt's end
            code, text = self._failure(a, e)
        self.ctx.done(a.job, code, text)

    def _failure(self, a: att.Attempt, e: BaseException) -> tuple[int, str]:
        from ray import exceptions as rex

        node = self._node_file(a)
        if node:
            self._where[a.job] = node
        where = f"node {node['ip']} ({node['id'][:12]}, {node['hostname']})" if node else "its node"
        if isinstance(e, rex.TaskCancelledError) or a.cancelled:
            return -int(signal.SIGTERM), json.dumps({"error": "the Ray task was cancelled"})
        if isinstance(e, rex.NodeDiedError | rex.WorkerCrashedError | rex.LocalRayletDiedError):
            reason = f"the Ray {where} running it was lost ({type(e).__name__})"
        elif isinstance(e, rex.OutOfMemoryError):
            reason = f"Ray killed it for lack of memory on {where}: ask for more resources.memory"
        elif isinstance(e, rex.RayTaskError):
            reason = f"the Ray task failed on {where}: {_first_line(e)}"
        else:
            reason = f"the Ray task failed ({type(e).__name__}): {_first_line(e)}"
        return 1, json.dumps({"error": reason})

    def _node_file(self, a: att.Attempt) -> dict[str, str] | None:
        try:
            node = json.loads(a.base.with_name(a.base.name + ".node.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if isinstance(node, dict) and {"id", "ip", "hostname"} <= node.keys():
            return {k: str(node[k]) for k in ("id", "ip", "hostname")}
        return None

    def where(self, a: att.Attempt) -> dict[str, str] | None:
        """The node that ran the attempt (id, ip, hostname), once it has ended; None if unknown."""
        return self._where.pop(a.job, None)

    def cancel(self, a: att.Attempt, sig: int = signal.SIGKILL) -> None:
        with self._lock:
            ref = self._refs.get(a.job) or self._stopping.get(a.job)
            if ref is not None:
                self._stopping[a.job] = ref  # its end may be reported before its worker stopped
        if ref is None:
            return
        import ray

        with contextlib.suppress(Exception):  # the task may have just ended
            ray.cancel(ref, force=sig == signal.SIGKILL, recursive=True)

    def close(self) -> None:
        """Force what is still running or was cancelled (a run that ends leaves no task behind)."""
        with self._lock:
            refs = [*self._refs.values(), *self._stopping.values()]
            self._stopping.clear()
        if refs:
            import ray

            for ref in refs:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)


_REMOTES: dict[str, Any] = {}
_REMOTES_LOCK = threading.Lock()


def _remote_function(name: str) -> Any:
    """The Ray remote function of `ray_task.<name>`, made once per process (each one made is pickled and
    exported to the cluster: once, not once per run)."""
    with _REMOTES_LOCK:
        fn = _REMOTES.get(name)
        if fn is None:
            import ray

            from mlops_nocode.runtime.executors import ray_task

            fn = _REMOTES[name] = ray.remote(getattr(ray_task, name))
        return fn


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[-1] if text else type(e).__name__


class RayPythonExecutor(_RayExecutor):
    """`runtime: python` on Ray: the step's function runs inside a Ray worker (ray_task.run_python)."""

    runtime = "python"
    _function = "run_python"

    def payload(self, a: att.Attempt) -> dict[str, Any]:
        p = att.python_payload(a, self.ctx.run_id, self.box, self.ctx.home)
        extra = {
            **a.secrets,
            **att.spec_dir_env(a.step),
            "MLOPS_RUN_ID": self.ctx.run_id,
            "MLOPS_STEP_ID": a.step.id,
        }
        p["env"] = {k: v for k, v in p["env"].items() if k in extra or k in _TEMP or k.startswith("MLOPS_")}
        p["python_path"] = list(self.ctx.python_path)
        p.pop("grants", None)
        return p


class RayCommandExecutor(_RayExecutor):
    """`runtime: command` on Ray: the command runs on the task's node, as a child of its Ray worker."""

    runtime = "command"
    _function = "run_command"

    def output_files(self, step: PlanStep) -> dict[str, str] | None:
        return dict((step.command or {}).get("outputs", {}))

    def payload(self, a: att.Attempt) -> dict[str, Any]:
        p = att.command_payload(a, self.ctx.run_id, self.box)
        p.pop("grants", None)
        return p
