"""What /metrics needs from events, aggregated as they are written (inside the report's transaction, so
a batch sent again is counted once): step durations and throttler waits into histograms of bounded label
sets, and, when a run succeeds, the metrics its steps reported as the latest values of its pipeline."""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mlops_nocode.monitoring import names
from mlops_nocode.runs.labels import Admitted, digest, pipeline_label, upsert_ignore
from mlops_nocode.runs.models import EventRow, MetricHistogramRow, RunRow, StepMetricRow

STEP_FAMILY = "mlops_step_duration_seconds"
THROTTLE_FAMILY = "mlops_throttle_wait_seconds"
RUN_FAMILY = "mlops_run_duration_seconds"  # (status, target, pipeline); its count: mlops_runs_finished
WAIT_FAMILY = "mlops_queue_wait_seconds"  # stored by (target, pipeline); its count: mlops_runs_started
BUCKETS = {
    STEP_FAMILY: names.STEP_BUCKETS,
    THROTTLE_FAMILY: names.WAIT_BUCKETS,
    RUN_FAMILY: names.DURATION_BUCKETS,
    WAIT_FAMILY: names.WAIT_BUCKETS,
}
MAX_RUNTIME = 32


def number(value: Any) -> float | None:
    """A finite float, or None (strings, booleans, NaN and infinities are not measurements)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    out = float(value)
    return out if math.isfinite(out) else None


def _step_status(event_type: str, data: dict[str, Any]) -> str:
    if event_type == "step.failed":
        return "failed" if data.get("final", True) else "retried"
    return "cached" if data.get("cached") else "succeeded"


def record_events(s: Session, run: RunRow, events: Iterable[Any]) -> None:
    """Add the step ends (`step.finished`, `step.failed` with a duration) and throttler waits of newly
    stored events to their histograms. Steps that ran elsewhere are counted by the Runner that ran them."""
    observed: dict[tuple[str, tuple[str, ...]], list[float]] = {}
    ends: list[tuple[str, str, str, float]] = []  # step, runtime, status, duration
    runtimes: dict[str, str] | None = None
    for e in events:
        data = e.data if isinstance(e.data, dict) else {}
        if e.type == "throttle":
            waited = number(data.get("waited"))
            if waited is not None and waited >= 0:
                observed.setdefault((THROTTLE_FAMILY, ()), []).append(waited)
            continue
        if e.type not in ("step.finished", "step.failed") or not e.step or data.get("elsewhere"):
            continue
        duration = number(data.get("duration"))
        if duration is None or duration < 0:
            continue
        if runtimes is None:
            runtimes = {str(x.get("id")): str(x.get("runtime")) for x in (run.plan or {}).get("steps") or []}
        runtime = runtimes.get(e.step, "unknown")[:MAX_RUNTIME]
        ends.append((e.step, runtime, _step_status(e.type, data), duration))
    if ends:
        # label values are admitted, and rows locked, in one order, so concurrent reports never deadlock
        admitted = Admitted(s)
        pipeline = admitted("pipeline", pipeline_label(run.pipeline))
        steps = {step: admitted("step", step) for step in sorted({end[0] for end in ends})}
        for step, runtime, status, duration in ends:
            observed.setdefault((STEP_FAMILY, (pipeline, steps[step], runtime, status)), []).append(duration)
    for family, labels in sorted(observed):
        _observe(s, family, labels, observed[(family, labels)])


def record_start(s: Session, run: RunRow) -> None:
    """A run started for the first time (claimed once): its queue-to-start wait."""
    pipeline = Admitted(s)("pipeline", pipeline_label(run.pipeline))
    waited = max(0.0, (run.started_at or run.created_at) - run.created_at)
    _observe(s, WAIT_FAMILY, (run.target_label, pipeline), [waited])


def record_end(s: Session, run: RunRow) -> None:
    """A run ended: its start-to-end time (0 for a run cancelled before it started)."""
    pipeline = Admitted(s)("pipeline", pipeline_label(run.pipeline))
    end = run.finished_at or time.time()
    took = max(0.0, end - run.started_at) if run.started_at is not None else 0.0
    _observe(s, RUN_FAMILY, (run.status, run.target_label, pipeline), [took])


def _observe(s: Session, family: str, labels: tuple[str, ...], values: list[float]) -> None:
    bounds = BUCKETS[family]
    key = digest(*labels)
    empty = [0] * (len(bounds) + 1)
    new = {
        "family": family,
        "digest": key,
        "labels": list(labels),
        "buckets": empty,
        "total": 0.0,
        "count": 0,
    }
    s.execute(upsert_ignore(s, MetricHistogramRow, new))
    row = s.get(MetricHistogramRow, (family, key), with_for_update=True, populate_existing=True)
    assert row is not None
    buckets = list(row.buckets)
    for v in values:
        buckets[bisect_left(bounds, v)] += 1  # le: a value equal to a bound falls in that bucket
    row.buckets = buckets
    row.total = row.total + sum(values)
    row.count = row.count + len(values)


def record_success(s: Session, run_id: str) -> None:
    """A run succeeded: the metrics its steps reported become the latest values of its pipeline (the
    last value of each (step, metric) in the run)."""
    run = s.get(RunRow, run_id)
    if run is None:
        return
    latest: dict[tuple[str, str], float] = {}
    query = (
        select(EventRow.step, EventRow.data)
        .where(EventRow.run_id == run_id, EventRow.type == "metric", EventRow.step.is_not(None))
        .order_by(EventRow.seq)
    )
    for step, data in s.execute(query):
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            continue
        value = number(data.get("value"))
        if value is not None and data["name"]:
            latest[(str(step), data["name"])] = value
    if not latest:
        return
    admitted = Admitted(s)
    pipeline = admitted("pipeline", pipeline_label(run.pipeline))
    now = time.time()
    # one order of admissions and row locks (see record_events): pipeline, steps, metrics, rows
    steps = {step: admitted("step", step) for step in sorted({step for step, _ in latest})}
    metrics = {metric: admitted("metric", metric) for metric in sorted({metric for _, metric in latest})}
    final: dict[tuple[str, str, str], float] = {}
    for (step, metric), value in latest.items():
        final[(pipeline, steps[step], metrics[metric])] = value
    for labels in sorted(final):
        value = final[labels]
        key = digest(*labels)
        row = s.get(StepMetricRow, key, with_for_update=True)
        if row is None:
            values = {"digest": key, "pipeline": labels[0], "step": labels[1], "metric": labels[2]}
            s.execute(
                upsert_ignore(
                    s, StepMetricRow, values | {"value": value, "run_id": run_id, "updated_at": now}
                )
            )
            row = s.get(StepMetricRow, key, with_for_update=True, populate_existing=True)
            assert row is not None
        row.value, row.run_id, row.updated_at = value, run_id, now
