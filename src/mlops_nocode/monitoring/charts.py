"""The charts, written once: each is a title, a unit and PromQL queries over the metrics of `names`.

The Grafana dashboards are generated from these (`monitoring/dashboards`), and the gateway's
`/api/v1/monitoring/charts` runs the same queries against a configured Prometheus (else it computes the
same series from its own database). Queries may use two placeholders: `$__rate_interval` (Grafana's; the
gateway puts its own step there) and `$pipeline` (a dashboard variable; the gateway puts an escaped regex
of the pipeline asked for, or `.*`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Unit = Literal["runs", "seconds", "ratio", "usd", "usd/h", "requests/s", "count", "value"]
PANELS = ("overview", "runs", "models", "costs")
Panel = Literal["overview", "runs", "models", "costs"]


@dataclass(frozen=True, slots=True)
class Query:
    """One PromQL expression of a chart and the legend of its series (`{{label}}` as in Grafana)."""

    expr: str
    legend: str


@dataclass(frozen=True, slots=True)
class Chart:
    """One chart of one panel (a Grafana dashboard, a tab of the UI's monitoring page)."""

    id: str
    panel: Panel
    title: str
    unit: Unit
    queries: tuple[Query, ...]
    description: str = ""


def _q(expr: str, legend: str) -> Query:
    return Query(expr, legend)


_R = "$__rate_interval"
CHARTS: tuple[Chart, ...] = (
    Chart(
        "runs_finished",
        "overview",
        "Runs ended",
        "runs",
        (_q(f"sum by (status) (increase(mlops_runs_finished_total[{_R}]))", "{{status}}"),),
        "Runs that ended in each interval, by final status",
    ),
    Chart(
        "failure_rate",
        "overview",
        "Failure rate",
        "ratio",
        (
            _q(
                f'sum(increase(mlops_runs_finished_total{{status="failed"}}[{_R}])) '
                f"/ clamp_min(sum(increase(mlops_runs_finished_total[{_R}])), 1)",
                "failed / ended",
            ),
        ),
        "Share of the runs ended in each interval that failed",
    ),
    Chart(
        "active_queued",
        "overview",
        "Active and queued runs",
        "runs",
        (_q("sum(mlops_runs_active)", "running"), _q("sum(mlops_queue_depth)", "queued")),
    ),
    Chart("workers_live", "overview", "Live workers", "count", (_q("sum(mlops_workers_live)", "workers"),)),
    Chart(
        "api_requests",
        "overview",
        "API requests",
        "requests/s",
        (_q(f"sum by (status) (rate(mlops_http_requests_total[{_R}]))", "{{status}}"),),
    ),
    Chart(
        "api_latency",
        "overview",
        "API latency (p95)",
        "seconds",
        (
            _q(
                "histogram_quantile(0.95, sum by (le) "
                f"(rate(mlops_http_request_duration_seconds_bucket[{_R}])))",
                "p95",
            ),
        ),
    ),
    Chart(
        "run_duration",
        "runs",
        "Run duration",
        "seconds",
        (
            _q(
                "histogram_quantile(0.5, sum by (le) "
                f'(rate(mlops_run_duration_seconds_bucket{{pipeline=~"$pipeline"}}[{_R}])))',
                "p50",
            ),
            _q(
                "histogram_quantile(0.95, sum by (le) "
                f'(rate(mlops_run_duration_seconds_bucket{{pipeline=~"$pipeline"}}[{_R}])))',
                "p95",
            ),
        ),
    ),
    Chart(
        "queue_wait",
        "runs",
        "Queue to start (p95)",
        "seconds",
        (_q(f"histogram_quantile(0.95, sum by (le) (rate(mlops_queue_wait_seconds_bucket[{_R}])))", "p95"),),
    ),
    Chart(
        "step_duration",
        "runs",
        "Step duration (p95)",
        "seconds",
        (
            _q(
                "histogram_quantile(0.95, sum by (le, step) "
                f'(rate(mlops_step_duration_seconds_bucket{{pipeline=~"$pipeline"}}[{_R}])))',
                "{{step}}",
            ),
        ),
    ),
    Chart(
        "step_failures",
        "runs",
        "Step failures",
        "count",
        (
            _q(
                "sum by (step) (increase(mlops_step_duration_seconds_count"
                f'{{status="failed",pipeline=~"$pipeline"}}[{_R}]))',
                "{{step}}",
            ),
        ),
    ),
    Chart(
        "throttle_wait",
        "runs",
        "Time waiting for the CPU throttler",
        "seconds",
        (_q(f"sum(increase(mlops_throttle_wait_seconds_sum[{_R}]))", "waited"),),
    ),
    Chart(
        "model_metrics",
        "models",
        "Model metrics (latest successful run)",
        "value",
        (_q('mlops_step_metric{pipeline=~"$pipeline"}', "{{pipeline}} {{step}} {{metric}}"),),
        "Each metric a step reports, across the runs of a pipeline",
    ),
    Chart(
        "cost_per_hour",
        "costs",
        "Cost per hour of what runs",
        "usd/h",
        (
            _q("sum by (target) (mlops_cost_per_hour_usd)", "{{target}}"),
            _q("max(mlops_cost_budget_per_hour_usd)", "budget"),
        ),
    ),
    Chart(
        "cost_spent",
        "costs",
        "Money spent",
        "usd",
        (_q(f"sum by (target) (increase(mlops_cost_spent_usd_total[{_R}]))", "{{target}}"),),
    ),
)


def charts_of(panel: str) -> tuple[Chart, ...]:
    """The charts of one panel, in order."""
    return tuple(c for c in CHARTS if c.panel == panel)
