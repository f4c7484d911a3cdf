"""Following a step's metrics file while the step runs, so what `ctx.metric` reports (a loss per training
step) becomes `metric` events live, not only when the step ends.

The file holds one JSON object per line (runtime/context.py). Only complete lines are read while the step
runs; at its end the last line counts even without its newline. At most `max_bytes` are read in all
(STEP_VALUES_MAX_BYTES), whatever the step writes; a line that is no metric is passed over.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mlops_nocode.runtime.collect import Refused, open_regular

READ_PER_POLL = 4 * 1024 * 1024


class MetricFollower:
    """New metric records of one step's metrics file since the last call."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path, self.left, self.offset = path, max_bytes, 0
        self._partial = b""

    def poll(self, final: bool = False) -> list[dict[str, Any]]:
        """The records completed since the last call (`final`: the step ended, read everything left)."""
        data = self._read(None if final else READ_PER_POLL)
        if not data and not (final and self._partial):
            return []
        lines = (self._partial + data).split(b"\n")
        self._partial = b"" if final else lines.pop()
        return [r for r in (_record(line) for line in lines) if r is not None]

    def _read(self, budget: int | None) -> bytes:
        if self.left <= 0:
            return b""
        try:
            fd = open_regular(self.path)
        except (OSError, Refused):
            return b""
        with os.fdopen(fd, "rb") as f:
            f.seek(self.offset)
            want = self.left if budget is None else min(self.left, budget)
            data = f.read(want)
        self.offset += len(data)
        self.left -= len(data)
        return data


def _record(line: bytes) -> dict[str, Any] | None:
    try:
        ev = json.loads(line.decode("utf-8", "replace"))
        name, value = ev["name"], float(ev["value"])
    except (ValueError, KeyError, TypeError):
        return None
    labels = ev.get("labels", {})
    if not isinstance(name, str) or not isinstance(labels, dict):
        return None
    return {"name": name, "value": value, "labels": {str(k): str(v) for k, v in labels.items()}}
