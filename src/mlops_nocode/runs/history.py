"""Chart data from the gateway's own database, for when no Prometheus is configured (or it is down).

Each chart of `monitoring/charts.py` has its counterpart here, by id, computed from the runs table, the
events Runners reported and the deployments' prices: the same series Prometheus would hold, on a time grid
of `step`-second buckets (the value at `x` covers `(x - step, x]`). What the database does not record (API
requests and latencies) is an empty chart with a note; live workers are known only now. Every query is
bounded by the time range and a LIMIT; a chart cut by the limit says so."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, and_, func, or_, select

from mlops_nocode.runs.db import Database
from mlops_nocode.runs.labels import pipeline_label
from mlops_nocode.runs.models import DeploymentRow, EventRow, RunRow, WorkerRow

MAX_ROWS = 20_000  # rows one chart reads
MAX_SERIES = 50  # series one chart shows
MAX_RUNS = 300  # runs of the model-metrics chart (one point each)
MAX_REFS = 10_000  # distinct pipeline refs read to find a pipeline's runs by name
PROMETHEUS_ONLY = "recorded by Prometheus only: set PROMETHEUS_URL to see it"
Refs = list[str] | None  # the runs' pipeline refs of the pipeline asked for (None: every pipeline)


@dataclass
class Curve:
    """One named series on its chart's x axis (None: no value there)."""

    name: str
    values: list[float | None]


@dataclass
class ChartData:
    """A chart's x axis (unix seconds), its series and an optional note (why it is empty or partial)."""

    x: list[float]
    series: list[Curve] = field(default_factory=list)
    note: str | None = None


class Grid:
    """`n` points every `step` seconds from `start`; bucket `i` holds times in (x[i] - step, x[i]]."""

    def __init__(self, start: int, end: int, step: int) -> None:
        self.start, self.step = start, step
        self.n = (end - start) // step + 1
        self.x = [float(start + i * step) for i in range(self.n)]

    @property
    def end(self) -> float:
        return self.x[-1]

    def bucket(self, t: float) -> int | None:
        i = math.ceil((t - self.start) / self.step)
        return i if 0 <= i < self.n else None

    def add_during(self, values: list[float | None], begin: float, end: float, amount: float) -> None:
        """Add `amount` at every x with begin <= x < end (an interval open at `end`; inf: still open)."""
        first = max(0, math.ceil((begin - self.start) / self.step))
        last = self.n if end == math.inf else min(self.n, math.ceil((end - self.start) / self.step))
        for i in range(first, last):
            values[i] = (values[i] or 0.0) + amount


def quantile(values: list[float], q: float) -> float | None:
    """The nearest-rank `q` quantile (None for no value)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _limited(data: ChartData, rows: int) -> ChartData:
    if rows >= MAX_ROWS:
        data.note = f"computed from the latest {MAX_ROWS} records only: narrow the range"
    return data


def _keyed(grid: Grid, groups: dict[str, list[float | None]]) -> list[Curve]:
    return [Curve(k, groups[k]) for k in sorted(groups)[:MAX_SERIES]]


class History:
    """Chart series computed from one gateway database."""

    def __init__(self, db: Database, budget_per_hour: float | None = None, live_after: float = 30.0) -> None:
        self.db = db
        self.budget = budget_per_hour
        self.live_after = live_after
        self._refs: dict[str, list[str]] = {}  # a panel's charts share one read of a pipeline's refs
        self._charts: dict[str, Callable[[Grid, Refs], ChartData]] = {
            "runs_finished": self._runs_finished,
            "failure_rate": self._failure_rate,
            "active_queued": self._active_queued,
            "workers_live": self._workers_live,
            "run_duration": self._run_duration,
            "queue_wait": self._queue_wait,
            "step_duration": self._step_duration,
            "step_failures": self._step_failures,
            "throttle_wait": self._throttle_wait,
            "model_metrics": self._model_metrics,
            "cost_per_hour": self._cost_per_hour,
            "cost_spent": self._cost_spent,
        }

    def chart(self, chart_id: str, start: int, end: int, step: int, pipeline: str | None) -> ChartData:
        """The series of chart `chart_id` on the grid from `start` to `end` every `step` seconds."""
        grid = Grid(start, end, step)
        compute = self._charts.get(chart_id)
        if compute is None:
            return ChartData(grid.x, note=PROMETHEUS_ONLY)
        return compute(grid, None if pipeline is None else self.refs_of(pipeline))

    def pipelines(self, limit: int = 500) -> list[dict[str, Any]]:
        """Pipelines that have runs, by name as /metrics labels them (all versions together), the most
        recently launched first, and whether their succeeded runs reported metrics."""
        with self.db.read() as c:
            rows = c.execute(
                select(RunRow.pipeline, func.count(), func.max(RunRow.created_at))
                .group_by(RunRow.pipeline)
                .order_by(func.max(RunRow.created_at).desc())
                .limit(MAX_REFS)
            ).all()
            with_metrics = set(
                c.execute(
                    select(RunRow.pipeline)
                    .distinct()
                    .join(EventRow, EventRow.run_id == RunRow.id)
                    .where(EventRow.type == "metric", RunRow.status == "succeeded")
                ).scalars()
            )
        out: dict[str, dict[str, Any]] = {}
        for ref, n, last in rows:
            name = pipeline_label(str(ref))
            entry = out.setdefault(name, {"name": name, "runs": 0, "last_run_at": 0.0, "has_metrics": False})
            entry["runs"] += int(n)
            entry["last_run_at"] = max(entry["last_run_at"], float(last))
            entry["has_metrics"] = entry["has_metrics"] or ref in with_metrics
        return sorted(out.values(), key=lambda e: -e["last_run_at"])[:limit]

    def refs_of(self, name: str) -> list[str]:
        """The runs' pipeline refs (`pipeline/NAME@VERSION`) of the pipeline called `name`."""
        if name not in self._refs:
            with self.db.read() as c:
                refs = c.execute(select(RunRow.pipeline).distinct().limit(MAX_REFS)).scalars()
                self._refs[name] = [r for r in refs if pipeline_label(r) == name]
        return self._refs[name]

    def has_pipeline(self, name: str) -> bool:
        """Whether the pipeline called `name` has runs."""
        return bool(self.refs_of(name))

    # runs

    def _ended(self, grid: Grid, *cols: Any, pipeline: Refs = None) -> list[Any]:
        query = (
            select(RunRow.status, RunRow.finished_at, *cols)
            .where(RunRow.finished_at > grid.start - grid.step, RunRow.finished_at <= grid.end)
            .where(RunRow.status.in_(("succeeded", "failed", "cancelled")))
            .order_by(RunRow.finished_at.desc())
            .limit(MAX_ROWS)
        )
        if pipeline is not None:
            query = query.where(RunRow.pipeline.in_(pipeline))
        with self.db.read() as c:
            return list(c.execute(query).all())

    def _runs_finished(self, grid: Grid, pipeline: Refs) -> ChartData:
        rows = self._ended(grid)
        groups: dict[str, list[float | None]] = {}
        for status, t, *_ in rows:
            i = grid.bucket(t)
            if i is not None:
                values = groups.setdefault(status, [0.0] * grid.n)
                values[i] = (values[i] or 0.0) + 1
        return _limited(ChartData(grid.x, _keyed(grid, groups)), len(rows))

    def _failure_rate(self, grid: Grid, pipeline: Refs) -> ChartData:
        rows = self._ended(grid)
        ended, failed = [0] * grid.n, [0] * grid.n
        for status, t, *_ in rows:
            i = grid.bucket(t)
            if i is not None:
                ended[i] += 1
                failed[i] += status == "failed"
        if not any(ended):
            return ChartData(grid.x)
        rate = [f / e if e else None for f, e in zip(failed, ended, strict=True)]
        return _limited(ChartData(grid.x, [Curve("failed / ended", rate)]), len(rows))

    def _active_queued(self, grid: Grid, pipeline: Refs) -> ChartData:
        query = (
            select(RunRow.created_at, RunRow.started_at, RunRow.finished_at)
            .where(RunRow.created_at <= grid.end)
            .where(or_(RunRow.finished_at.is_(None), RunRow.finished_at > grid.start))
            .order_by(RunRow.created_at.desc())
            .limit(MAX_ROWS)
        )
        with self.db.read() as c:
            rows = list(c.execute(query).all())
        if not rows:
            return ChartData(grid.x)
        running: list[float | None] = [0.0] * grid.n
        queued: list[float | None] = [0.0] * grid.n
        for created, started, finished in rows:
            end = finished if finished is not None else math.inf
            begin = started if started is not None else math.inf
            if begin < end:
                grid.add_during(running, begin, end, 1)
            grid.add_during(queued, created, min(begin, end), 1)
        curves = [Curve("running", running), Curve("queued", queued)]
        return _limited(ChartData(grid.x, curves), len(rows))

    def _workers_live(self, grid: Grid, pipeline: Refs) -> ChartData:
        """The database keeps workers' last beats only: their count now, at the last point."""
        with self.db.read() as c:
            live = c.execute(
                select(func.count()).where(WorkerRow.heartbeat_at > time.time() - self.live_after)
            ).scalar_one()
        values: list[float | None] = [None] * grid.n
        values[-1] = float(live)
        note = "the gateway's database keeps only the current count: set PROMETHEUS_URL for its history"
        return ChartData(grid.x, [Curve("workers", values)], note)

    def _run_duration(self, grid: Grid, pipeline: Refs) -> ChartData:
        rows = self._ended(grid, RunRow.started_at, pipeline=pipeline)
        per: list[list[float]] = [[] for _ in range(grid.n)]
        for _, t, started in rows:
            i = grid.bucket(t)
            if i is not None and started is not None:
                per[i].append(t - started)
        if not any(per):
            return ChartData(grid.x)
        curves = [Curve(f"p{int(q * 100)}", [quantile(v, q) for v in per]) for q in (0.5, 0.95)]
        return _limited(ChartData(grid.x, curves), len(rows))

    def _queue_wait(self, grid: Grid, pipeline: Refs) -> ChartData:
        query = (
            select(RunRow.created_at, RunRow.started_at)
            .where(RunRow.started_at > grid.start - grid.step, RunRow.started_at <= grid.end)
            .order_by(RunRow.started_at.desc())
            .limit(MAX_ROWS)
        )
        with self.db.read() as c:
            rows = list(c.execute(query).all())
        per: list[list[float]] = [[] for _ in range(grid.n)]
        for created, started in rows:
            i = None if started is None else grid.bucket(started)
            if i is not None and started is not None:
                per[i].append(max(0.0, started - created))
        if not any(per):
            return ChartData(grid.x)
        return _limited(ChartData(grid.x, [Curve("p95", [quantile(v, 0.95) for v in per])]), len(rows))

    # steps

    def _events(self, grid: Grid, types: Iterable[str], pipeline: Refs, before: float = 0) -> list[Any]:
        query: Select[Any] = select(EventRow.run_id, EventRow.type, EventRow.step, EventRow.ts, EventRow.data)
        query = query.where(EventRow.type.in_(tuple(types)))
        query = query.where(EventRow.ts > grid.start - grid.step - before, EventRow.ts <= grid.end)
        if pipeline is not None:
            query = query.join(RunRow, and_(RunRow.id == EventRow.run_id, RunRow.pipeline.in_(pipeline)))
        with self.db.read() as c:
            return list(c.execute(query.order_by(EventRow.ts.desc()).limit(MAX_ROWS)).all())

    def _step_duration(self, grid: Grid, pipeline: Refs) -> ChartData:
        rows = self._events(grid, ("step.started", "step.finished", "step.failed"), pipeline, before=3600)
        started: dict[tuple[str, str], float] = {}
        per: dict[str, list[list[float]]] = {}
        for run_id, kind, step, ts, data in reversed(rows):  # oldest first: a start precedes its end
            key = (run_id, step or "")
            if kind == "step.started":
                started[key] = ts
                continue
            i = grid.bucket(ts)
            duration = data.get("duration") if isinstance(data, dict) else None
            if not isinstance(duration, int | float):
                duration = ts - started[key] if key in started else None
            if i is not None and duration is not None:
                per.setdefault(step or "", [[] for _ in range(grid.n)])[i].append(float(duration))
        groups = {s: [quantile(v, 0.95) for v in buckets] for s, buckets in per.items()}
        return _limited(ChartData(grid.x, _keyed(grid, groups)), len(rows))

    def _step_failures(self, grid: Grid, pipeline: Refs) -> ChartData:
        rows = self._events(grid, ("step.failed",), pipeline)
        groups: dict[str, list[float | None]] = {}
        for _, _, step, ts, _ in rows:
            i = grid.bucket(ts)
            if i is not None:
                values = groups.setdefault(step or "", [0.0] * grid.n)
                values[i] = (values[i] or 0.0) + 1
        return _limited(ChartData(grid.x, _keyed(grid, groups)), len(rows))

    def _throttle_wait(self, grid: Grid, pipeline: Refs) -> ChartData:
        rows = self._events(grid, ("throttle",), None)
        waited = [0.0] * grid.n
        for *_, ts, data in rows:
            i = grid.bucket(ts)
            value = data.get("waited") if isinstance(data, dict) else None
            if i is not None and isinstance(value, int | float) and math.isfinite(value):
                waited[i] += float(value)
        if not rows:
            return ChartData(grid.x)
        return _limited(ChartData(grid.x, [Curve("waited", list[float | None](waited))]), len(rows))

    # models

    def _model_metrics(self, grid: Grid, pipeline: Refs) -> ChartData:
        """Each metric of each step across the succeeded runs that ended in the range (x: their ends);
        a run's point is the last value its step reported."""
        runs_q = select(RunRow.id, RunRow.pipeline, RunRow.finished_at).where(
            RunRow.status == "succeeded",
            RunRow.finished_at > grid.start - grid.step,
            RunRow.finished_at <= grid.end,
        )
        if pipeline is not None:
            runs_q = runs_q.where(RunRow.pipeline.in_(pipeline))
        with self.db.read() as c:
            runs = list(c.execute(runs_q.order_by(RunRow.finished_at.desc()).limit(MAX_RUNS)).all())[::-1]
            ids = [r[0] for r in runs]
            metric_q = select(EventRow.run_id, EventRow.step, EventRow.data).where(EventRow.type == "metric")
            metric_q = metric_q.where(EventRow.run_id.in_(ids)).order_by(EventRow.run_id, EventRow.seq)
            events = list(c.execute(metric_q.limit(MAX_ROWS)).all()) if ids else []
        column = {run_id: i for i, run_id in enumerate(ids)}
        names = {r[0]: r[1] for r in runs}
        groups: dict[str, list[float | None]] = defaultdict(lambda: [None] * len(ids))
        for run_id, step, data in events:
            name, value = (data.get("name"), data.get("value")) if isinstance(data, dict) else (None, None)
            if not isinstance(name, str) or not isinstance(value, int | float) or not math.isfinite(value):
                continue
            label = (
                f"{step or ''} {name}" if pipeline else f"{pipeline_label(names[run_id])} {step or ''} {name}"
            )
            groups[label][column[run_id]] = float(value)
        x = [float(r[2] or 0.0) for r in runs]
        data = ChartData(x, [Curve(k, groups[k]) for k in sorted(groups)[:MAX_SERIES]])
        if len(runs) >= MAX_RUNS:
            data.note = f"the latest {MAX_RUNS} succeeded runs of the range"
        return data

    # costs

    def _priced(self, grid: Grid) -> list[Any]:
        """(provider, price per hour, billed from, billed until or None) of the priced deployments billed
        during the grid (from provisioning until destroyed, as /metrics counts them)."""
        query = (
            select(
                DeploymentRow.provider,
                DeploymentRow.price_per_hour,
                DeploymentRow.started_at,
                DeploymentRow.ended_at,
            )
            .where(DeploymentRow.price_per_hour > 0, DeploymentRow.started_at.is_not(None))
            .where(DeploymentRow.started_at <= grid.end)
            .where(or_(DeploymentRow.ended_at.is_(None), DeploymentRow.ended_at > grid.start - grid.step))
            .limit(MAX_ROWS)
        )
        with self.db.read() as c:
            return list(c.execute(query).all())

    def _cost_per_hour(self, grid: Grid, pipeline: Refs) -> ChartData:
        rows = self._priced(grid)
        groups: dict[str, list[float | None]] = {}
        for provider, price, started, finished in rows:
            values = groups.setdefault(provider, [0.0] * grid.n)
            grid.add_during(values, started, finished if finished is not None else math.inf, float(price))
        curves = _keyed(grid, groups)
        if self.budget is not None and curves:
            curves.append(Curve("budget", [self.budget] * grid.n))
        data = ChartData(grid.x, curves)
        if not rows:
            data.note = "no priced deployment ran in this range (local runs cost nothing)"
        return _limited(data, len(rows))

    def _cost_spent(self, grid: Grid, pipeline: Refs) -> ChartData:
        rows = self._priced(grid)
        groups: dict[str, list[float | None]] = {}
        for provider, price, started, finished in rows:
            values = groups.setdefault(provider, [0.0] * grid.n)
            end = finished if finished is not None else min(grid.end, time.time())
            first = grid.bucket(max(started, grid.start - grid.step + 1e-9)) or 0
            for i in range(first, grid.n):
                x = grid.x[i]
                if x - grid.step >= end:
                    break
                overlap = min(end, x) - max(started, x - grid.step)
                if overlap > 0:
                    values[i] = (values[i] or 0.0) + float(price) * overlap / 3600
        data = ChartData(grid.x, _keyed(grid, groups))
        if not rows:
            data.note = "no priced deployment ran in this range (local runs cost nothing)"
        return _limited(data, len(rows))
