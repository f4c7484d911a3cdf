"""The state of a run and of each of its steps, and the result a finished run returns."""

from __future__ import annotations

import secrets as _random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mlops_nocode.compiler.plan import PlanStep
from mlops_nocode.runtime.attempt import Attempt
from mlops_nocode.runtime.throttle import ThrottleGate


class Throttle(Protocol):
    """What the runner needs of a throttler (see runtime/throttle.py): its gate, which never blocks."""

    def gate(self) -> ThrottleGate: ...


class Cancelled(Exception):
    """The run was asked to stop (Ctrl-C, SIGTERM or `cancel()`)."""


@dataclass
class StepState:
    step: PlanStep
    status: str = "pending"
    attempts: int = 0
    started: float | None = None
    duration: float = 0.0
    error: str | None = None
    cached: bool = False
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    cache_key: str | None = None
    not_before: float = 0.0
    deadline: float | None = None
    current: Attempt | None = None

    def summary(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "status": self.status,
            "duration": round(self.duration, 4),
            "attempts": self.attempts,
            "cached": self.cached,
        }
        if self.error:
            d["error"] = self.error
        return d


@dataclass
class RunResult:
    run_id: str
    status: str
    root: str
    duration: float
    steps: dict[str, StepState]
    outputs: dict[str, Any]
    run_dir: Path

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "pipeline": self.root,
            "duration": round(self.duration, 4),
            "run_dir": str(self.run_dir),
            "steps": {k: s.summary() for k, s in self.steps.items()},
            "outputs": self.outputs,
        }


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + _random.token_hex(3)
