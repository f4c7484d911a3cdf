"""Every metric the platform exports: name, Prometheus type, labels, meaning.

The one list the exposition (`api/metrics.py`), the alert rules, the dashboards, the UI's charts and
docs/MONITORING.md are checked against. Label values are bounded: a user string (pipeline, step, metric
name) becomes a label value only for the first `LABEL_VALUES_CAP` distinct values of that label; later
ones are reported under `OTHER`. Run ids never become label values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["counter", "gauge", "histogram"]
LABEL_VALUES_CAP = 200
OTHER = "_other"

DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0)
STEP_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0)
WAIT_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True, slots=True)
class MetricDef:
    """One exported metric family. `name` is the family name: a counter's samples carry `_total`, a
    histogram's `_bucket`, `_sum` and `_count` (what PromQL queries name)."""

    name: str
    kind: Kind
    labels: tuple[str, ...]
    help: str

    def series_names(self) -> tuple[str, ...]:
        """The sample names Prometheus stores for this family."""
        if self.kind == "counter":
            return (self.name + "_total",)
        if self.kind == "histogram":
            return (self.name + "_bucket", self.name + "_sum", self.name + "_count")
        return (self.name,)


def _m(name: str, kind: Kind, labels: tuple[str, ...], help: str) -> MetricDef:
    return MetricDef(name, kind, labels, help)


METRICS: tuple[MetricDef, ...] = (
    # runs
    _m(
        "mlops_runs_started",
        "counter",
        ("target", "pipeline"),
        "Runs that started (claimed by a worker once)",
    ),
    _m(
        "mlops_runs_finished", "counter", ("status", "target", "pipeline"), "Runs that ended, by final status"
    ),
    _m(
        "mlops_run_duration_seconds",
        "histogram",
        ("status", "target", "pipeline"),
        "Start-to-end time of ended runs",
    ),
    _m("mlops_runs_active", "gauge", ("target",), "Runs running now"),
    _m(
        "mlops_run_heartbeat_age_max_seconds", "gauge", (), "Oldest heartbeat among running runs (stuck runs)"
    ),
    # queue
    _m("mlops_queue_depth", "gauge", (), "Runs queued, waiting for a worker"),
    _m(
        "mlops_queue_oldest_age_seconds",
        "gauge",
        (),
        "How long the oldest queued run has waited (0 when none)",
    ),
    _m("mlops_queue_wait_seconds", "histogram", ("target",), "Queue-to-start latency of started runs"),
    # steps
    _m(
        "mlops_step_duration_seconds",
        "histogram",
        ("pipeline", "step", "runtime", "status"),
        "Duration of step ends",
    ),
    _m(
        "mlops_step_metric",
        "gauge",
        ("pipeline", "step", "metric"),
        "Last value a step reported (ctx.metric) in the latest successful run of its pipeline",
    ),
    # workers and throttler
    _m("mlops_workers_live", "gauge", (), "Workers whose heartbeat is recent"),
    _m(
        "mlops_worker_heartbeat_age_seconds",
        "gauge",
        ("worker",),
        "Seconds since each known worker's last heartbeat",
    ),
    _m("mlops_throttle_wait_seconds", "histogram", (), "Time steps waited for the CPU throttler"),
    # webhooks and notifications
    _m(
        "mlops_webhook_deliveries",
        "counter",
        ("result",),
        "Webhook delivery attempts by result (delivered, failed)",
    ),
    _m("mlops_webhook_queue", "gauge", ("state",), "Webhook deliveries in the queue by state"),
    _m(
        "mlops_alerts_received",
        "counter",
        ("status",),
        "Alertmanager notifications received (firing, resolved)",
    ),
    # API
    _m("mlops_http_requests", "counter", ("method", "route", "status"), "HTTP requests by route template"),
    _m(
        "mlops_http_request_duration_seconds",
        "histogram",
        ("method", "route"),
        "HTTP request latency by route template",
    ),
    # cost
    _m(
        "mlops_cost_per_hour_usd",
        "gauge",
        ("target",),
        "Estimated cost per hour of what is running, by target",
    ),
    _m("mlops_cost_spent_usd", "counter", ("target",), "Estimated money spent on deployments, by target"),
    _m(
        "mlops_cost_budget_per_hour_usd",
        "gauge",
        (),
        "The configured hourly budget (MONITORING_BUDGET_PER_HOUR)",
    ),
    _m(
        "mlops_step_metric_min",
        "gauge",
        ("metric",),
        "The configured lowest acceptable value of a model metric (MONITORING_METRIC_MIN)",
    ),
    # storage and identity
    _m("mlops_artifact_store_size_bytes", "gauge", (), "Size of the filesystem holding the artifact store"),
    _m(
        "mlops_artifact_store_free_bytes",
        "gauge",
        (),
        "Free bytes on the filesystem holding the artifact store",
    ),
    _m("mlops_build_info", "gauge", ("version",), "Always 1; the gateway's version"),
)

BY_NAME: dict[str, MetricDef] = {m.name: m for m in METRICS}


def series_names() -> frozenset[str]:
    """Every sample name the gateway exports (what PromQL may reference)."""
    return frozenset(n for m in METRICS for n in m.series_names())
