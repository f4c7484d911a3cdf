"""Python and command steps: each attempt runs in a child of the run's warm fork server (forkserver.py),
which confines itself as the run's sandbox says before any step code runs (docs/SECURITY.md)."""

from __future__ import annotations

import abc
import signal
from typing import ClassVar

from mlops_nocode.compiler.plan import PlanStep
from mlops_nocode.runtime import attempt as att
from mlops_nocode.runtime.executors.base import ALL_PROVIDERS, ExecContext


class _Forked(abc.ABC):
    runtime: ClassVar[str]
    providers: ClassVar[frozenset[str]] = ALL_PROVIDERS

    def __init__(self, ctx: ExecContext) -> None:
        self.ctx = ctx

    def output_files(self, step: PlanStep) -> dict[str, str] | None:
        return None

    @abc.abstractmethod
    def payload(self, a: att.Attempt) -> dict[str, object]:
        """What the fork server's child needs to run the attempt."""

    def start(self, a: att.Attempt) -> None:
        payload = self.payload(a)
        spill = a.base.with_name(a.base.name + ".payload.json")
        self.ctx.fork_server().submit(a.job, payload, spill)

    def cancel(self, a: att.Attempt, sig: int = signal.SIGKILL) -> None:
        self.ctx.fork_server().kill(a.job, sig)

    def close(self) -> None:  # noqa: B027 (nothing of its own to release)
        """The fork server belongs to the run (the Runner closes it)."""


class PythonExecutor(_Forked):
    """`runtime: python`: the function runs in a pre-forked child with the plan's modules imported."""

    runtime = "python"

    def payload(self, a: att.Attempt) -> dict[str, object]:
        return att.python_payload(a, self.ctx.run_id, self.ctx.box, self.ctx.home)


class CommandExecutor(_Forked):
    """`runtime: command`: a pre-forked child confines itself and execs the command in place."""

    runtime = "command"

    def output_files(self, step: PlanStep) -> dict[str, str] | None:
        return dict((step.command or {}).get("outputs", {}))

    def payload(self, a: att.Attempt) -> dict[str, object]:
        return att.command_payload(a, self.ctx.run_id, self.ctx.box)
