"""/api/v1/monitoring/...: the data of the UI's charts (read scope).

Each chart of `monitoring/charts.py` for the panel asked for: its PromQL run through the query API of the
Prometheus at PROMETHEUS_URL when one is configured, else (and whenever that Prometheus fails) the same
series computed from the gateway's own database (`runs/history.py`). Bounded: the range is capped at
MAX_RANGE and a series has at most MAX_POINTS points."""

from __future__ import annotations

import math
import time
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from mlops_nocode.api import examples as E
from mlops_nocode.api.state import Gateway, gateway
from mlops_nocode.monitoring.charts import PANELS, Chart, charts_of
from mlops_nocode.monitoring.promquery import PromClient, PromUnavailable, legend, render
from mlops_nocode.runs.history import ChartData, Curve, History
from mlops_nocode.spec.errors import Problem, SpecError

router = APIRouter(prefix="/monitoring", tags=["monitoring"])

MIN_RANGE = 60
MAX_RANGE = 90 * 24 * 3600
DEFAULT_RANGE = 3600
MAX_POINTS = 300
MAX_PIPELINE = 300


class SeriesOut(BaseModel):
    """One named series; `values[i]` belongs to the chart's `x[i]` (null: no value there)."""

    name: str
    values: list[float | None]


class ChartOut(BaseModel):
    """One chart: what it shows, its x axis (unix seconds) and its series; `note` says why it is empty
    or partial."""

    id: str
    title: str
    unit: str
    description: str
    x: list[float]
    series: list[SeriesOut]
    note: str | None = None


class ChartsOut(BaseModel):
    """The charts of one panel, in order, and where their data came from."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "panel": "overview",
                    "source": "gateway",
                    "start": E.T0 - 3600,
                    "end": E.T0,
                    "step": 15,
                    "note": None,
                    "charts": [
                        {
                            "id": "runs_finished",
                            "title": "Runs ended",
                            "unit": "runs",
                            "description": "Runs that ended in each interval, by final status",
                            "x": [E.T0 - 15, E.T0],
                            "series": [{"name": "succeeded", "values": [2, 0]}],
                            "note": None,
                        }
                    ],
                }
            ]
        }
    )

    panel: Literal["overview", "runs", "models", "costs"]
    source: Literal["prometheus", "gateway"]
    start: int
    end: int
    step: int
    note: str | None = Field(default=None, description="why Prometheus was not used, when it is configured")
    charts: list[ChartOut]


class PipelineOut(BaseModel):
    """A pipeline that has runs, by name (every version together), as /metrics labels it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "iris-classifier",
                    "runs": 12,
                    "last_run_at": E.T0,
                    "has_metrics": True,
                }
            ]
        }
    )

    name: str
    runs: int
    last_run_at: float
    has_metrics: bool = Field(description="whether its succeeded runs reported metrics (ctx.metric)")


def _invalid(what: str, where: str, fix: str) -> SpecError:
    return SpecError(Problem(what, where, fix))


def _range(text: str) -> int:
    try:
        seconds = int(text)
    except ValueError:
        raise _invalid(
            f"range {text[:40]!r} is not a whole number of seconds",
            "query.range",
            f"give seconds between {MIN_RANGE} and {MAX_RANGE}, e.g. 3600 for the last hour",
        ) from None
    if not MIN_RANGE <= seconds <= MAX_RANGE:
        raise _invalid(
            f"range {seconds} is out of bounds",
            "query.range",
            f"give seconds between {MIN_RANGE} and {MAX_RANGE} (90 days)",
        )
    return seconds


def grid(seconds: int, min_step: int, now: float) -> tuple[int, int, int]:
    """(start, end, step) of a range ending now: at most MAX_POINTS points, aligned on the step (so
    successive refreshes ask Prometheus the same instants); the last point is the first at or after now,
    so what just happened is in the last bucket."""
    step = max(min_step, math.ceil(seconds / (MAX_POINTS - 1)))
    end = math.ceil(now / step) * step
    start = end - seconds // step * step
    return start, end, step


def _uses_pipeline(chart: Chart) -> bool:
    return any("$pipeline" in q.expr for q in chart.queries)


def _out(chart: Chart, data: ChartData) -> ChartOut:
    return ChartOut(
        id=chart.id,
        title=chart.title,
        unit=chart.unit,
        description=chart.description,
        x=data.x,
        series=[SeriesOut(name=c.name, values=c.values) for c in data.series],
        note=data.note,
    )


def _from_prometheus(
    client: PromClient, chart: Chart, start: int, end: int, step: int, pipeline: str | None
) -> ChartData:
    x = [float(t) for t in range(start, end + 1, step)]
    index = {int(t): i for i, t in enumerate(x)}
    curves: list[Curve] = []
    for q in chart.queries:
        for s in client.query_range(render(q.expr, step, pipeline), start, end, step):
            values: list[float | None] = [None] * len(x)
            for t, v in s.points:
                i = index.get(round(t))
                if i is not None:
                    values[i] = v
            curves.append(Curve(legend(q.legend, s.labels), values))
    return ChartData(x, curves)


def _panel(gw: Gateway, history: History, panel: str, seconds: int, pipeline: str | None) -> ChartsOut:
    settings = gw.settings
    start, end, step = grid(seconds, settings.prometheus_min_step, time.time())
    charts = charts_of(panel)
    note = None
    if settings.prometheus_url:
        client = PromClient(settings.prometheus_url, settings.prometheus_timeout)
        try:
            out = [
                _out(
                    c, _from_prometheus(client, c, start, end, step, pipeline if _uses_pipeline(c) else None)
                )
                for c in charts
            ]
            return ChartsOut(panel=panel, source="prometheus", start=start, end=end, step=step, charts=out)
        except PromUnavailable as e:
            note = (
                f"Prometheus (PROMETHEUS_URL) failed: {e}; these charts come from the gateway's own history"
            )
    out = []
    for c in charts:
        data = history.chart(c.id, start, end, step, pipeline if _uses_pipeline(c) else None)
        if note is not None:
            data.note = f"{note}. {data.note}" if data.note else note
        out.append(_out(c, data))
    return ChartsOut(panel=panel, source="gateway", start=start, end=end, step=step, note=note, charts=out)


@router.get("/charts", response_model=ChartsOut)
async def charts(
    gw: Gateway = Depends(gateway),
    panel: str = Query("overview", description="overview, runs, models or costs", max_length=40),
    range_: str = Query(
        str(DEFAULT_RANGE), alias="range", description=f"seconds back from now ({MIN_RANGE}..{MAX_RANGE})"
    ),
    pipeline: str | None = Query(None, description="a pipeline with runs (GET /api/v1/monitoring/pipelines)"),
) -> ChartsOut:
    """The charts of one panel of the monitoring page, over the last `range` seconds."""
    if panel not in PANELS:
        raise _invalid(f"unknown panel {panel!r}", "query.panel", f"use one of {', '.join(PANELS)}")
    seconds = _range(range_)
    settings = gw.settings
    history = History(gw.db, settings.monitoring_budget_per_hour, settings.worker_live_after)
    if pipeline is not None:
        if not pipeline or len(pipeline) > MAX_PIPELINE:
            raise _invalid(
                "pipeline name is empty or too long",
                "query.pipeline",
                "give a name from GET /api/v1/monitoring/pipelines",
            )
        if not await gw.read(history.has_pipeline, pipeline):
            raise _invalid(
                f"no runs of pipeline {pipeline[:80]!r}",
                "query.pipeline",
                "give a name from GET /api/v1/monitoring/pipelines (pipelines that have runs)",
            )
    return await run_in_threadpool(_panel, gw, history, panel, seconds, pipeline)


@router.get("/pipelines", response_model=list[PipelineOut])
async def pipelines(gw: Gateway = Depends(gateway)) -> list[dict[str, Any]]:
    """Pipelines that have runs, the most recently launched first (at most 500)."""
    return await gw.read(History(gw.db).pipelines)
