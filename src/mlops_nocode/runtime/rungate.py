"""The throttler's gate as one run's scheduler uses it: never blocking, one wait shared by the steps due."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlops_nocode.runtime.state import StepState
from mlops_nocode.runtime.throttle import GateTicket, ThrottleGate

EVENT_STEPS = 20
"""Step ids named in a `throttle` event (its `count` says how many were let through)."""


class RunGate:
    """Which ready step may start now. While the machine is busy one wait is in progress; the steps that
    are due meanwhile join it, and when it ends they are all let through (a step held by one wait never
    waits again, even when the parallelism limit makes it start later)."""

    def __init__(self, gate: ThrottleGate, label: str) -> None:
        self.gate = gate
        self.label = label
        self.retry_at: float | None = None
        """While closed: when to ask again (on the throttler's clock)."""
        self._ticket: GateTicket | None = None
        self._passed: set[str] = set()

    def next(
        self, first: str, ready: list[str], states: Mapping[str, StepState], now: float
    ) -> tuple[str | None, dict[str, Any] | None]:
        """The step to start (`first` is the first one due), or None while the gate is closed; and, when
        a wait has just ended, the data of the `throttle` event that says so."""
        if self._passed:
            held = next((r for r in ready if r in self._passed and states[r].not_before <= now), None)
            if held is not None:
                self._passed.discard(held)
                return held, None
        if self._ticket is None:
            self._ticket = self.gate.enter()
        state = self.gate.poll(self._ticket, self.label)
        if not state.open:
            self.retry_at = state.retry_at
            return None, None
        self._ticket, self.retry_at = None, None
        if not state.result.throttled:
            return first, None
        due = [r for r in ready if states[r].not_before <= now]
        self._passed.update(r for r in due if r != first)
        r = state.result
        event = {
            "waited": round(r.waited, 4),
            "reason": r.reason,
            "timed_out": r.timed_out,
            "steps": due[:EVENT_STEPS],
            "count": len(due),
        }
        return first, event
