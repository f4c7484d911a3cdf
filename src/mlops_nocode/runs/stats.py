"""What /metrics reads from the database at scrape time, in one read transaction of a few small queries
(so every gateway and worker process agrees). Ended runs are not scanned: their ends and first starts
were aggregated into histograms as they were written (runs.eventstats); only the queued and running runs
are read, through the status index, so a scrape costs about the same with 10 or 100,000 runs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sqlalchemy import Connection, case, func, literal, select

from mlops_nocode.runs.db import Database
from mlops_nocode.runs.eventstats import RUN_FAMILY, WAIT_FAMILY
from mlops_nocode.runs.labels import cap_in_order
from mlops_nocode.runs.models import (
    QUEUE_STATES,
    DeliveryRow,
    DeploymentRow,
    MetricHistogramRow,
    QueuedDelivery,
    RunRow,
    StepMetricRow,
    WorkerRow,
)

Labels = tuple[str, ...]


@dataclass
class Histogram:
    """Per-bucket counts (not cumulative; the last is +Inf), their sum and count."""

    buckets: list[int]
    total: float = 0.0
    count: int = 0

    def add(self, other: Histogram) -> None:
        self.buckets = [a + b for a, b in zip(self.buckets, other.buckets, strict=True)]
        self.total += other.total
        self.count += other.count


@dataclass
class Snapshot:
    """Everything the run collector exports, as plain values keyed by label values."""

    started: dict[Labels, int] = field(default_factory=dict)  # (target, pipeline)
    finished: dict[Labels, int] = field(default_factory=dict)  # (status, target, pipeline)
    durations: dict[Labels, Histogram] = field(default_factory=dict)  # (status, target, pipeline)
    waits: dict[Labels, Histogram] = field(default_factory=dict)  # (target,)
    active: dict[str, int] = field(default_factory=dict)  # target -> running runs
    heartbeat_age_max: float = 0.0
    queue_depth: int = 0
    queue_oldest_age: float = 0.0
    histograms: dict[str, dict[Labels, Histogram]] = field(default_factory=dict)  # written at event time
    step_metrics: dict[Labels, float] = field(default_factory=dict)  # (pipeline, step, metric)
    workers: dict[str, float] = field(default_factory=dict)  # worker -> heartbeat age
    cost_per_hour: dict[str, float] = field(default_factory=dict)  # target -> USD/h
    cost_spent: dict[str, float] = field(default_factory=dict)  # target -> USD
    deliveries: dict[str, int] = field(default_factory=dict)  # delivered|failed -> attempts
    webhook_queue: dict[str, int] = field(default_factory=dict)  # state -> entries


# only the runs queued or running (through the status index): ended runs are counted as they end
ACTIVE_QUERY = (
    select(
        RunRow.status,
        RunRow.target_label,
        func.count(),
        func.min(RunRow.created_at),
        func.min(RunRow.heartbeat_at),
    )
    .where(RunRow.status.in_(("queued", "running")))
    .group_by(RunRow.status, RunRow.target_label)
)
HIST_QUERY = select(
    MetricHistogramRow.family,
    MetricHistogramRow.labels,
    MetricHistogramRow.buckets,
    MetricHistogramRow.total,
    MetricHistogramRow.count,
)
STEP_METRICS_QUERY = select(
    StepMetricRow.pipeline, StepMetricRow.step, StepMetricRow.metric, StepMetricRow.value
)
WORKERS_QUERY = select(WorkerRow.name, WorkerRow.heartbeat_at).order_by(WorkerRow.started_at, WorkerRow.name)
_RUNNING = DeploymentRow.ended_at.is_(None)
_PRICE = DeploymentRow.price_per_hour
COST_QUERY = (
    select(
        DeploymentRow.provider,
        func.sum(case((_RUNNING, _PRICE), else_=literal(0.0))),
        func.sum(
            case((_RUNNING, literal(0.0)), else_=_PRICE * (DeploymentRow.ended_at - DeploymentRow.started_at))
        ),
        func.sum(case((_RUNNING, _PRICE * DeploymentRow.started_at), else_=literal(0.0))),
    )
    .where(DeploymentRow.started_at.is_not(None))
    .group_by(DeploymentRow.provider)
)
DELIVERIES_QUERY = select(DeliveryRow.ok, func.count()).group_by(DeliveryRow.ok)
QUEUE_QUERY = select(QueuedDelivery.state, func.count()).group_by(QueuedDelivery.state)


def read_snapshot(db: Database) -> Snapshot:
    """One consistent read of everything (one snapshot of the database)."""
    now = time.time()
    snap = Snapshot()
    with db.read() as c:
        _runs(c, snap, now)
        _histograms(c, snap)
        _ends_and_starts(snap)
        snap.step_metrics = {(p, s, m): float(v) for p, s, m, v in c.execute(STEP_METRICS_QUERY)}
        ages = [(str(w), max(0.0, now - float(h))) for w, h in c.execute(WORKERS_QUERY)]
        _costs(c, snap, now)
        for ok, n in c.execute(DELIVERIES_QUERY):
            snap.deliveries["delivered" if ok else "failed"] = int(n)
        counts = {str(state): int(n) for state, n in c.execute(QUEUE_QUERY)}
    snap.deliveries = {
        "delivered": snap.deliveries.get("delivered", 0),
        "failed": snap.deliveries.get("failed", 0),
    }
    snap.webhook_queue = {s: int(counts.get(s, 0)) for s in QUEUE_STATES}
    capped = cap_in_order([n for n, _ in ages])
    for worker, age in ages:
        key = capped[worker]
        snap.workers[key] = max(age, snap.workers.get(key, 0.0))
    return snap


def _runs(c: Connection, snap: Snapshot, now: float) -> None:
    heartbeat_min: float | None = None
    oldest_queued: float | None = None
    for status, target, n, created_min, heartbeat in c.execute(ACTIVE_QUERY):
        if status == "running":
            snap.active[str(target)] = snap.active.get(str(target), 0) + int(n)
            if heartbeat is not None:
                heartbeat_min = heartbeat if heartbeat_min is None else min(heartbeat_min, heartbeat)
        else:
            snap.queue_depth += int(n)
            oldest_queued = created_min if oldest_queued is None else min(oldest_queued, created_min)
    snap.active.setdefault("local", 0)
    snap.heartbeat_age_max = max(0.0, now - heartbeat_min) if heartbeat_min is not None else 0.0
    snap.queue_oldest_age = max(0.0, now - oldest_queued) if oldest_queued is not None else 0.0


def _ends_and_starts(snap: Snapshot) -> None:
    """Runs ended and started, from the histograms their ends and first starts were written to."""
    snap.durations = snap.histograms.pop(RUN_FAMILY, {})
    snap.finished = {labels: h.count for labels, h in snap.durations.items()}
    for (target, pipeline), h in snap.histograms.pop(WAIT_FAMILY, {}).items():
        snap.started[(target, pipeline)] = h.count
        snap.waits.setdefault((target,), Histogram([0] * len(h.buckets))).add(h)


def _histograms(c: Connection, snap: Snapshot) -> None:
    for family, labels, buckets, total, count in c.execute(HIST_QUERY):
        snap.histograms.setdefault(str(family), {})[tuple(labels)] = Histogram(
            [int(x) for x in buckets], float(total), int(count)
        )


def _costs(c: Connection, snap: Snapshot, now: float) -> None:
    """Billed from a deployment's start (provisioning) to its end (destroyed), at its hourly price."""
    for provider, per_hour, ended, running_starts in c.execute(COST_QUERY):
        per_hour = float(per_hour or 0.0)
        snap.cost_per_hour[str(provider)] = per_hour
        seconds_usd = float(ended or 0.0) + per_hour * now - float(running_starts or 0.0)
        snap.cost_spent[str(provider)] = max(0.0, seconds_usd) / 3600.0
    for target in snap.active:
        snap.cost_per_hour.setdefault(target, 0.0)
        snap.cost_spent.setdefault(target, 0.0)
