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
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mlops_nocode.compiler.plan import PlanStep
    from mlops_nocode.runtime.shared import SharedArtifacts
    from mlops_nocode.runtime.state import StepState

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


def deployment_of(step: PlanStep) -> str:
    """The deployment a placed step belongs to (its provider until placement names one)."""
    placed = step.placement or {}
    provider = str(step.target.get("provider", "local"))
    return str(
        placed.get("deployment") or placed.get("provider") or ("local" if provider == "auto" else provider)
    )


def arrived(
    results: StepResults | None, run_id: str, state: StepState, wait_until: float, wait: float
) -> bool:
    """Whether the end of `state`'s step, run by another deployment, is known: then `state` holds it
    (its outputs, or failed saying where); failed too once `wait_until` (monotonic) has passed."""
    record = results.get(run_id, state.step.id) if results is not None else None
    if record is None:
        if time.monotonic() < wait_until:
            return False
        state.status, state.error = "failed", f"no result from its deployment after {wait:g}s"
        return True
    if record.get("status") == "succeeded":
        state.status, state.outputs = "succeeded", dict(record.get("outputs") or {})
    else:
        where = record.get("deployment") or "another deployment"
        state.status, state.error = "failed", f"{record.get('status')} on {where}"
    return True


def publish(results: StepResults, run_id: str, state: StepState, deployment: str) -> None:
    """Record how one of this Runner's steps ended, for the Runners of the other deployments."""
    record = {"status": state.status, "outputs": state.outputs, "error": state.error}
    results.put(run_id, state.step.id, record | {"deployment": deployment})


class SharedStepResults:
    """The step results of the shared (S3) store, as StepResults (for Runners that share no disk)."""

    def __init__(self, shared: SharedArtifacts) -> None:
        self.shared = shared

    def put(self, run_id: str, step_id: str, record: dict[str, Any]) -> None:
        status = str(record.get("status"))
        outputs = record.get("outputs") if status == "succeeded" else None
        if outputs:
            self.shared.publish(outputs)
        self.shared.put_result(run_id, step_id, status, outputs, record.get("error"))

    def get(self, run_id: str, step_id: str) -> dict[str, Any] | None:
        from mlops_nocode.runtime.s3store import StoreError

        try:
            return self.shared.wait_result(run_id, step_id, time.monotonic())
        except StoreError:
            return None


def step_results(home: Path) -> StepResults:
    """Where the Runners of a run on this MLOPS_HOME meet: the shared store's results when
    ARTIFACT_STORE_* names one (StoreError when those settings are bad), else a folder in `home`."""
    from mlops_nocode.runtime.limits import load_limits
    from mlops_nocode.runtime.shared import open_shared
    from mlops_nocode.runtime.store import ArtifactStore

    shared = open_shared(ArtifactStore(home / "artifacts"), load_limits())
    return SharedStepResults(shared) if shared is not None else LocalStepResults(home / "results")
