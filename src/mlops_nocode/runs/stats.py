"""What /metrics reads from the database at scrape time, in one read transaction and a few aggregate
queries over plain columns (so every gateway and worker process agrees, and a scrape costs the same with
10 or 10,000 runs give or take a table scan of fixed-size columns)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, case, func, literal, select

from mlops_nocode.monitoring import names
from mlops_nocode.runs.db import Database
from mlops_nocode.runs.labels import cap_in_order, pipeline_label
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


def _buckets(value: Any, bounds: tuple[float, ...], cond: Any) -> list[Any]:
    """SUM(CASE) columns counting `value` per bucket (non-cumulative) where `cond` holds."""
    cols, low = [], None
    for b in (*bounds, None):
        parts = [cond]
        if low is not None:
            parts.append(value > low)
        if b is not None:
            parts.append(value <= b)
        cols.append(func.sum(case((and_(*parts), 1), else_=0)))
        low = b
    return cols


def _runs_query() -> Any:
    ended = RunRow.finished_at.is_not(None) & RunRow.started_at.is_not(None)
    started = RunRow.started_at.is_not(None)
    duration = RunRow.finished_at - RunRow.started_at
    wait = RunRow.started_at - RunRow.created_at
    zero = literal(0.0)
    return select(
        RunRow.status,
        RunRow.target_label,
        RunRow.pipeline,
        func.count(),
        func.sum(case((started, 1), else_=0)),
        func.min(RunRow.created_at),
        func.min(RunRow.heartbeat_at),
        func.sum(case((ended, duration), else_=zero)),
        func.sum(case((ended, 1), else_=0)),
        func.sum(case((started, wait), else_=zero)),
        *_buckets(duration, names.DURATION_BUCKETS, ended),
        *_buckets(wait, names.WAIT_BUCKETS, started),
    ).group_by(RunRow.status, RunRow.target_label, RunRow.pipeline)


RUNS_QUERY = _runs_query()
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
    rows = c.execute(RUNS_QUERY).all()
    first: dict[str, float] = {}
    label = {r[2]: pipeline_label(str(r[2])) for r in rows}
    for r in rows:
        name = label[r[2]]
        first[name] = min(first.get(name, r[5]), r[5])
    capped = cap_in_order(sorted(first, key=lambda p: (first[p], p)))
    nd, nw = len(names.DURATION_BUCKETS) + 1, len(names.WAIT_BUCKETS) + 1
    heartbeat_min: float | None = None
    oldest_queued: float | None = None
    for r in rows:
        status, target, n, started = str(r[0]), str(r[1]), int(r[3]), int(r[4] or 0)
        pipeline = capped[label[r[2]]]
        if started:
            key = (target, pipeline)
            snap.started[key] = snap.started.get(key, 0) + started
            wait = Histogram([int(x or 0) for x in r[10 + nd : 10 + nd + nw]], float(r[9] or 0), started)
            snap.waits.setdefault((target,), Histogram([0] * nw)).add(wait)
        if status == "running":
            snap.active[target] = snap.active.get(target, 0) + n
            if r[6] is not None:
                heartbeat_min = r[6] if heartbeat_min is None else min(heartbeat_min, r[6])
        elif status == "queued":
            snap.queue_depth += n
            oldest_queued = r[5] if oldest_queued is None else min(oldest_queued, r[5])
        else:
            key3 = (status, target, pipeline)
            snap.finished[key3] = snap.finished.get(key3, 0) + n
            dur = Histogram([int(x or 0) for x in r[10 : 10 + nd]], float(r[7] or 0), int(r[8] or 0))
            snap.durations.setdefault(key3, Histogram([0] * nd)).add(dur)
    snap.active.setdefault("local", 0)
    snap.heartbeat_age_max = max(0.0, now - heartbeat_min) if heartbeat_min is not None else 0.0
    snap.queue_oldest_age = max(0.0, now - oldest_queued) if oldest_queued is not None else 0.0


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
