"""Monitoring: a plain target label on runs, deployment billing times, workers' heartbeats, and the
small tables /metrics reads (label values admitted under the cap, histograms aggregated as events
arrive, the latest step metrics).

Revision ID: 0010_monitoring
Revises: 0009_assistant
"""

from __future__ import annotations

import bisect
import hashlib
import json
import time
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010_monitoring"
down_revision: str | None = "0009_assistant"
branch_labels: str | None = None
depends_on: str | None = None


def _target(plan: Any) -> str:
    """The same rule as runs.labels.plan_target, frozen here (migrations never import app code)."""
    if isinstance(plan, str):
        plan = json.loads(plan)
    found: set[str] = set()
    for step in (plan or {}).get("steps") or []:
        placement = step.get("placement") or {}
        provider = placement.get("provider") or (step.get("target") or {}).get("provider") or "local"
        found.add("local" if provider == "auto" else str(provider)[:64])
    if not found:
        return "local"
    return found.pop() if len(found) == 1 else "mixed"


CAP = 200  # monitoring.names.LABEL_VALUES_CAP when this was written
DURATION = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0)
WAIT = (0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


def _digest(*values: Any) -> str:
    return hashlib.sha256(json.dumps(values, separators=(",", ":")).encode()).hexdigest()


def _backfill(conn: Any) -> None:
    """The runs that already ended or started, counted as runs.eventstats counts new ones."""
    runs = sa.table(
        "runs",
        *(
            sa.column(n)
            for n in ("pipeline", "status", "target_label", "created_at", "started_at", "finished_at")
        ),
    )
    admitted: dict[str, str] = {}
    hists: dict[tuple[str, tuple[str, ...]], list[Any]] = {}

    def observe(family: str, labels: tuple[str, ...], value: float, bounds: tuple[float, ...]) -> None:
        h = hists.setdefault((family, labels), [[0] * (len(bounds) + 1), 0.0, 0])
        h[0][bisect.bisect_left(bounds, value)] += 1
        h[1] += value
        h[2] += 1

    for pipeline, status, target, created, started, finished in conn.execute(
        sa.select(*runs.c).order_by(runs.c.created_at)
    ):
        name = pipeline.split("/", 1)[1] if "/" in pipeline else pipeline
        name = name.split("@", 1)[0] or pipeline
        if name not in admitted:
            admitted[name] = name if len(admitted) < CAP else "_other"
        label = admitted[name]
        if started is not None:
            observe("mlops_queue_wait_seconds", (target, label), max(0.0, started - created), WAIT)
        if status in ("succeeded", "failed", "cancelled"):
            took = max(0.0, (finished or started or created) - started) if started is not None else 0.0
            observe("mlops_run_duration_seconds", (status, target, label), took, DURATION)
    now = time.time()
    labels_table = sa.table(
        "metric_labels", *(sa.column(n) for n in ("label", "digest", "value", "created_at"))
    )
    rows = [
        {"label": "pipeline", "digest": _digest(v), "value": v, "created_at": now}
        for v in admitted.values()
        if v != "_other"
    ]
    if rows:
        conn.execute(labels_table.insert(), rows)
    hist_table = sa.table(
        "metric_histograms",
        sa.column("family", sa.String),
        sa.column("digest", sa.String),
        sa.column("labels", sa.JSON),
        sa.column("buckets", sa.JSON),
        sa.column("total", sa.Float),
        sa.column("count", sa.Integer),
    )
    rows = [
        {"family": f, "digest": _digest(*k), "labels": list(k), "buckets": h[0], "total": h[1], "count": h[2]}
        for (f, k), h in hists.items()
    ]
    if rows:
        conn.execute(hist_table.insert(), rows)


def upgrade() -> None:
    """runs.target_label (backfilled), run_deployments.started_at/ended_at, and the new tables."""
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("target_label", sa.String(64), nullable=False, server_default="local"))
    conn = op.get_bind()
    runs = sa.table("runs", sa.column("id", sa.String), sa.column("plan", sa.JSON), sa.column("target_label"))
    for run_id, plan in conn.execute(sa.select(runs.c.id, runs.c.plan)).all():
        label = _target(plan)
        if label != "local":
            conn.execute(runs.update().where(runs.c.id == run_id).values(target_label=label))
    op.create_index("ix_runs_status_target", "runs", ["status", "target_label"])
    with op.batch_alter_table("run_deployments") as batch:
        batch.add_column(sa.Column("started_at", sa.Float, nullable=True))
        batch.add_column(sa.Column("ended_at", sa.Float, nullable=True))
    op.create_table(
        "workers",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("heartbeat_at", sa.Float, nullable=False),
    )
    op.create_table(
        "metric_labels",
        sa.Column("label", sa.String(32), primary_key=True),
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "metric_histograms",
        sa.Column("family", sa.String(64), primary_key=True),
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("buckets", sa.JSON, nullable=False),
        sa.Column("total", sa.Float, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.create_table(
        "step_metrics",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("pipeline", sa.Text, nullable=False),
        sa.Column("step", sa.Text, nullable=False),
        sa.Column("metric", sa.Text, nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    _backfill(conn)


def downgrade() -> None:
    """Drop them."""
    for table in ("step_metrics", "metric_histograms", "metric_labels", "workers"):
        op.drop_table(table)
    with op.batch_alter_table("run_deployments") as batch:
        batch.drop_column("ended_at")
        batch.drop_column("started_at")
    op.drop_index("ix_runs_status_target", "runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("target_label")
