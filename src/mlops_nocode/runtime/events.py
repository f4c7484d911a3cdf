"""Structured run events, serialised as JSON lines for the console, files and (later) the gateway."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

EVENT_TYPES = frozenset(
    {
        "run.started",
        "run.finished",
        "step.started",
        "step.finished",
        "step.failed",
        "step.retrying",
        "step.skipped",
        "step.cancelled",
        "step.waiting",
        "log",
        "metric",
        "throttle",
    }
)


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened in a run. `step` is the plan step id, None for run-level events."""

    type: str
    run_id: str
    step: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    ts: float = field(default_factory=time.time)

    def to_json(self) -> str:
        return json.dumps(
            {"type": self.type, "run_id": self.run_id, "step": self.step, "ts": self.ts, "data": self.data},
            default=str,
        )

    @classmethod
    def from_json(cls, line: str) -> Event:
        d = json.loads(line)
        return cls(d["type"], d["run_id"], d.get("step"), d.get("data", {}), d.get("ts", 0.0))


Sink = Callable[[Event], None]


class JsonLines:
    """A sink writing one JSON line per event to a text stream (thread-safe, flushed per event)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        line = event.to_json() + "\n"
        with self._lock:
            self.stream.write(line)
            self.stream.flush()


class Fanout:
    """Sends every event to several sinks, in order."""

    def __init__(self, *sinks: Sink) -> None:
        self.sinks = list(sinks)

    def __call__(self, event: Event) -> None:
        for sink in self.sinks:
            sink(event)
