"""The one small interface every runtime's executor implements, and what the Runner gives it.

The Runner is a scheduler (DAG, parallelism, retries, timeouts, cancellation, cache, events); an executor
knows how to run one attempt of a step of its runtime. The Runner calls, for each attempt:

1. `start(a)`: launch it without blocking (raise `StepFailure` when it cannot even start: nothing ran);
2. later, the executor calls `ctx.done(job, code, result)` exactly once, from any thread;
3. `cancel(a, sig)` at a timeout (SIGKILL) or a cancellation (SIGTERM, then SIGKILL): `done` still comes;
4. outputs are collected by the Runner with the executor's contract (`output_files`): either a JSON
   result `{"outputs": {...}}` / `{"error": "..."}` handed to `done` (python, http, terraform, ansible),
   or files the step wrote in its output folder, named by its section's `outputs` (command, container).

An executor may also have `attempt_secrets(a) -> {name: value}`: values it uses itself for the attempt
(e.g. a model route's provider key), resolved by the Runner before `start` and redacted like step secrets.

`close()` is called once when the run ends, whatever its end (e.g. destroying ephemeral infrastructure).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from mlops_nocode.compiler.plan import PlanStep
from mlops_nocode.runtime.attempt import Attempt
from mlops_nocode.runtime.forkserver import ForkServer
from mlops_nocode.runtime.limits import OutputLimits
from mlops_nocode.runtime.sandbox import Confinement, RunSandbox

Done = Callable[[str, int, "str | None"], None]
"""(job, exit code, result JSON text or None): how an attempt's end reaches the Runner."""

ALL_PROVIDERS: frozenset[str] = frozenset({"local", "k3s", "exoscale", "vastai", "runpod", "ray"})


class SubJobs:
    """Routes the ends of fork-server jobs an executor started itself (a Terraform or Ansible command)
    to the thread waiting for them, instead of the Runner's queue."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, tuple[threading.Event, list[Any]]] = {}

    def expect(self, job: str) -> tuple[threading.Event, list[Any]]:
        box: tuple[threading.Event, list[Any]] = (threading.Event(), [])
        with self._lock:
            self._waiting[job] = box
        return box

    def forget(self, job: str) -> None:
        with self._lock:
            self._waiting.pop(job, None)

    def deliver(self, job: str, code: int, result: str | None) -> bool:
        """Hand a job's end to its waiter; False when nobody waits for it (a step's own job)."""
        with self._lock:
            box = self._waiting.pop(job, None)
        if box is None:
            return False
        box[1].extend((code, result))
        box[0].set()
        return True


@dataclass
class ExecContext:
    """What a run gives its executors: its identity and folders, the sandbox, the limits, the fork server
    (started on first use), the cancellation flag and the `done` callback."""

    run_id: str
    run_dir: Path
    home: Path
    box_of: Callable[[], RunSandbox]
    """The run's sandbox (`box`), computed on first use: steps that run elsewhere (Ray) never need it."""
    limits: OutputLimits
    done: Done
    fork_server: Callable[[], ForkServer]
    cancelled: threading.Event
    environ: dict[str, str]
    subjobs: SubJobs = field(default_factory=SubJobs)
    python_path: tuple[str, ...] = ()
    """The plan's Python path and playbook folders (where a long-running service imports its code from)."""
    confinement: Confinement | None = None
    """How this machine confines steps (None: unknown); executors that run steps elsewhere read only its
    settings (what the steps' environment keeps)."""

    @property
    def box(self) -> RunSandbox:
        """What this run's local steps may see (sandbox.py)."""
        return self.box_of()


class Executor(Protocol):
    """Runs the attempts of the steps of one runtime, for one run (one instance per run and runtime)."""

    runtime: ClassVar[str]
    providers: ClassVar[frozenset[str]]
    """The providers whose targets can run this runtime (placement refuses the others)."""

    def __init__(self, ctx: ExecContext) -> None: ...

    def output_files(self, step: PlanStep) -> dict[str, str] | None:
        """Output name -> path in the output folder for steps whose outputs are files they write;
        None when the outputs come as the JSON result handed to `done`."""
        ...

    def start(self, a: Attempt) -> None:
        """Launch the attempt without blocking; StepFailure when it cannot start (nothing ran then)."""
        ...

    def cancel(self, a: Attempt, sig: int) -> None:
        """Stop the attempt (SIGTERM: ask; SIGKILL: force); `done` is still called for it."""
        ...

    def close(self) -> None:
        """The run ended: release what the executor holds for it."""
        ...
