"""Step results shared between the Runners of one run on different deployments.

A Runner that runs only its deployment's steps publishes the end of each of them here (status, and the
outputs as the artifact store records them); a Runner whose steps need an output made on another
deployment waits for that step's record. The local form is a folder beside the artifact store
(`MLOPS_HOME/results/<run>/<sha256 of the step id>.json`); an S3-compatible store provides the same two
methods for Runners on other machines.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any, Protocol

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class StepResults(Protocol):
    """Where the Runners of one run find the ends of each other's steps."""

    def put(self, run_id: str, step_id: str, record: dict[str, Any]) -> None:
        """Record a step's end: {"status", "outputs", "error", "deployment"}."""
        ...

    def get(self, run_id: str, step_id: str) -> dict[str, Any] | None:
        """The recorded end of a step, or None while there is none."""
        ...


class LocalStepResults:
    """Step results in a folder (shared by the Runners of one machine, or a shared file system)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, run_id: str, step_id: str) -> Path:
        if not RUN_ID.match(run_id) or run_id.strip(".") != run_id:
            raise ValueError(f"invalid run id {run_id!r}")
        return self.root / run_id / f"{hashlib.sha256(step_id.encode()).hexdigest()}.json"

    def put(self, run_id: str, step_id: str, record: dict[str, Any]) -> None:
        path = self._path(run_id, step_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{uuid.uuid4().hex}.tmp")
        tmp.write_text(json.dumps({"step": step_id, **record}, default=str), encoding="utf-8")
        os.replace(tmp, path)

    def get(self, run_id: str, step_id: str) -> dict[str, Any] | None:
        try:
            record = json.loads(self._path(run_id, step_id).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("step") != step_id:
            return None
        return record
