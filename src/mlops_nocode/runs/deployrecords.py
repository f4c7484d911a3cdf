"""What a run records about its deployments: state, and the Provisioned record of what exists for each
(enough to tear it down later, from any process, also after a failure or a restart)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from mlops_nocode.runs.db import Database
from mlops_nocode.runs.errors import RunNotFound
from mlops_nocode.runs.models import DeploymentRow, RunRow

ENDED = frozenset({"succeeded", "failed", "cancelled"})


def deployment_json(row: DeploymentRow) -> dict[str, Any]:
    """The API's view of a deployment (the Provisioned record holds ids and resource names, no secret)."""
    return {
        "name": row.name,
        "provider": row.provider,
        "status": row.status,
        "details": row.details,
        "price_per_hour": row.price_per_hour,
        "provisioned": row.provisioned,
        "updated_at": row.updated_at,
    }


class DeploymentRecords:
    """The run_deployments table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, run_id: str, name: str, provider: str, status: str, **fields: Any) -> None:
        """Create or update a deployment's row (`fields`: provisioned, details, price_per_hour)."""
        with self.db.session() as s:
            row = s.scalars(
                select(DeploymentRow).where(DeploymentRow.run_id == run_id, DeploymentRow.name == name)
            ).first()
            if row is None:
                row = DeploymentRow(run_id=run_id, name=name, provider=provider, price_per_hour=0.0)
                s.add(row)
            row.status, row.updated_at = status, time.time()
            for key, value in fields.items():
                setattr(row, key, value)
            _billing(row)

    def of(self, run_id: str) -> list[dict[str, Any]]:
        """The run's deployments (RunNotFound for an unknown run)."""
        with self.db.session() as s:
            if s.get(RunRow, run_id) is None:
                raise RunNotFound(run_id)
            rows = s.scalars(
                select(DeploymentRow).where(DeploymentRow.run_id == run_id).order_by(DeploymentRow.id)
            )
            return [deployment_json(r) for r in rows]

    def runner_ended(
        self, run_id: str, worker_id: str, attempt: int, name: str, status: str, details: str | None
    ) -> bool:
        """A deployment's Runner reports its end (with a token of the run's current claim)."""
        with self.db.session() as s:
            run = s.get(RunRow, run_id)
            if (
                run is None
                or run.worker_id != worker_id
                or run.attempts != attempt
                or run.status != "running"
            ):
                return False
            row = s.scalars(
                select(DeploymentRow).where(DeploymentRow.run_id == run_id, DeploymentRow.name == name)
            ).first()
            if row is None or row.status in ENDED or row.status == "destroyed":
                return False
            row.status, row.details, row.updated_at = status, details, time.time()
            _billing(row)
            return True


def _billing(row: DeploymentRow) -> None:
    """A deployment is billed (/metrics' cost) from provisioning until destroyed, or until it ended
    with nothing provisioned."""
    if row.status in ("provisioning", "running") and row.started_at is None:
        row.started_at = row.updated_at
    gone = row.status == "destroyed" or (row.status in ENDED and not row.provisioned)
    if gone and row.started_at is not None and row.ended_at is None:
        row.ended_at = row.updated_at
