"""The `ctx` a Python step may ask for: its output directory, a logger and a metric reporter."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any


@dataclass
class StepContext:
    """Given to a step function that declares a `ctx` keyword argument.

    - `output_dir`: an empty directory owned by this step; write output files here and return their paths.
    - `log`: a logger whose records go to the step's log (and to the run's events).
    - `metric(name, value)`: report a numeric metric now (it becomes a `metric` event).
    """

    step_id: str
    run_id: str
    output_dir: Path
    attempt: int = 1
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("mlops.step"))
    _events: IO[str] | None = None

    def metric(self, name: str, value: float, **labels: str) -> None:
        """Report one numeric metric value (e.g. a loss per epoch)."""
        self._emit({"type": "metric", "name": name, "value": float(value), "labels": labels})

    def _emit(self, event: dict[str, Any]) -> None:
        if self._events is not None:
            event["ts"] = time.time()
            self._events.write(json.dumps(event) + "\n")
            self._events.flush()
