"""The `ctx` a Python step may ask for: its output directory, a logger and a metric reporter."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import IO


class StepContext:
    """Given to a step function that declares a `ctx` keyword argument.

    - `output_dir`: a directory owned by this step (created on first use); write output files here and
      return their paths.
    - `log`: a logger whose records go to the step's log (and to the run's events).
    - `metric(name, value)`: report a numeric metric now (it becomes a `metric` event).
    """

    def __init__(
        self,
        step_id: str,
        run_id: str,
        output_dir: Path,
        attempt: int = 1,
        log: logging.Logger | None = None,
        events: Path | None = None,
    ) -> None:
        self.step_id = step_id
        self.run_id = run_id
        self.attempt = attempt
        self.log = log or logging.getLogger("mlops.step")
        self._output_dir = Path(output_dir)
        self._events_path = events
        self._events: IO[str] | None = None

    @property
    def output_dir(self) -> Path:
        """This step's own output folder, created on first use."""
        self._output_dir.mkdir(parents=True, exist_ok=True)
        return self._output_dir

    def metric(self, name: str, value: float, **labels: str) -> None:
        """Report one numeric metric value (e.g. a loss per epoch)."""
        if self._events is None and self._events_path is not None:
            self._events = open(self._events_path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the step
        if self._events is not None:
            event = {
                "type": "metric",
                "name": name,
                "value": float(value),
                "labels": labels,
                "ts": time.time(),
            }
            self._events.write(json.dumps(event) + "\n")
            self._events.flush()

    def __repr__(self) -> str:
        return (
            f"StepContext(step_id={self.step_id!r}, run_id={self.run_id!r}, output_dir={self._output_dir!r})"
        )
