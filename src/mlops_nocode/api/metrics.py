"""Prometheus metrics of one gateway (its own registry): every family of `monitoring.names`.

Runs, queue, workers, webhooks and costs are read from the database at scrape time (runs.stats), so
every gateway and worker process agrees; step durations, throttler waits and step metrics were aggregated
when their events were written (runs.eventstats). HTTP requests and alerts received are counted in
process."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlops_nocode import __version__
from mlops_nocode.monitoring import names
from mlops_nocode.runs import stats
from mlops_nocode.runs.service import RunService


def _counter(name: str) -> CounterMetricFamily:
    m = names.BY_NAME[name]
    return CounterMetricFamily(m.name, m.help, labels=list(m.labels))


def _gauge(name: str) -> GaugeMetricFamily:
    m = names.BY_NAME[name]
    return GaugeMetricFamily(m.name, m.help, labels=list(m.labels))


def _histogram(name: str, hists: dict[tuple[str, ...], stats.Histogram], bounds: tuple[float, ...]) -> Metric:
    m = names.BY_NAME[name]
    family = HistogramMetricFamily(m.name, m.help, labels=list(m.labels))
    les = (*[repr(float(b)) for b in bounds], "+Inf")
    for labels, h in hists.items():
        cumulative, running = [], 0
        for le, n in zip(les, h.buckets, strict=True):
            running += n
            cumulative.append((le, float(running)))
        family.add_metric(list(labels), cumulative, h.total)
    return family


def _counts(family: CounterMetricFamily | GaugeMetricFamily, values: dict[Any, Any]) -> Metric:
    for labels, value in values.items():
        family.add_metric(list(labels) if isinstance(labels, tuple) else [labels], value)
    return family


class _DatabaseCollector(Collector):
    """Reads the database at scrape time (one read transaction)."""

    def __init__(self, service: RunService, config: MonitoringConfig) -> None:
        self.service = service
        self.config = config

    def collect(self) -> Iterator[Metric]:
        snap = stats.read_snapshot(self.service.db)
        yield _counts(_counter("mlops_runs_started"), snap.started)
        yield _counts(_counter("mlops_runs_finished"), snap.finished)
        yield _histogram("mlops_run_duration_seconds", snap.durations, names.DURATION_BUCKETS)
        yield _counts(_gauge("mlops_runs_active"), snap.active)
        yield _counts(_gauge("mlops_run_heartbeat_age_max_seconds"), {(): snap.heartbeat_age_max})
        yield _counts(_gauge("mlops_queue_depth"), {(): snap.queue_depth})
        yield _counts(_gauge("mlops_queue_oldest_age_seconds"), {(): snap.queue_oldest_age})
        yield _histogram("mlops_queue_wait_seconds", snap.waits, names.WAIT_BUCKETS)
        for family, bounds in (
            ("mlops_step_duration_seconds", names.STEP_BUCKETS),
            ("mlops_throttle_wait_seconds", names.WAIT_BUCKETS),
        ):
            yield _histogram(family, snap.histograms.get(family, {}), bounds)
        yield _counts(_gauge("mlops_step_metric"), snap.step_metrics)
        live = sum(1 for age in snap.workers.values() if age <= self.config.worker_live_after)
        yield _counts(_gauge("mlops_workers_live"), {(): live})
        yield _counts(_gauge("mlops_worker_heartbeat_age_seconds"), snap.workers)
        yield _counts(_counter("mlops_webhook_deliveries"), snap.deliveries)
        yield _counts(_gauge("mlops_webhook_queue"), snap.webhook_queue)
        yield _counts(_gauge("mlops_cost_per_hour_usd"), snap.cost_per_hour)
        yield _counts(_counter("mlops_cost_spent_usd"), snap.cost_spent)


class MonitoringConfig:
    """What the static families read from the settings."""

    def __init__(
        self,
        budget_per_hour: float | None = None,
        metric_min: dict[str, float] | None = None,
        artifact_dir: Path | None = None,
        worker_live_after: float = 30.0,
    ) -> None:
        self.budget_per_hour = budget_per_hour
        self.metric_min = dict(metric_min or {})
        self.artifact_dir = artifact_dir
        self.worker_live_after = worker_live_after


class _StaticCollector(Collector):
    """Configuration and the machine: the budget, metric floors, artifact store disk, build info."""

    def __init__(self, config: Callable[[], MonitoringConfig]) -> None:
        self.config = config

    def collect(self) -> Iterator[Metric]:
        config = self.config()
        budget = _gauge("mlops_cost_budget_per_hour_usd")
        if config.budget_per_hour is not None:
            budget.add_metric([], config.budget_per_hour)
        yield budget
        floors = _gauge("mlops_step_metric_min")
        for metric, value in sorted(config.metric_min.items()):
            floors.add_metric([metric], value)
        yield floors
        size, free = _gauge("mlops_artifact_store_size_bytes"), _gauge("mlops_artifact_store_free_bytes")
        disk = _statvfs(config.artifact_dir)
        if disk is not None:
            size.add_metric([], disk[0])
            free.add_metric([], disk[1])
        yield size
        yield free
        info = _gauge("mlops_build_info")
        info.add_metric([__version__], 1)
        yield info


def _statvfs(folder: Path | None) -> tuple[int, int] | None:
    """(size, free bytes) of the filesystem holding `folder` (its nearest existing parent)."""
    if folder is None:
        return None
    path = folder
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize


class Metrics:
    """The registry and the in-process instruments of one gateway."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.config = MonitoringConfig()
        http = names.BY_NAME["mlops_http_requests"]
        self.requests = Counter(http.name, http.help, list(http.labels), registry=self.registry)
        latency = names.BY_NAME["mlops_http_request_duration_seconds"]
        self.latency = Histogram(
            latency.name,
            latency.help,
            list(latency.labels),
            registry=self.registry,
            buckets=names.HTTP_BUCKETS,
        )
        alerts = names.BY_NAME["mlops_alerts_received"]
        self.alerts_received = Counter(alerts.name, alerts.help, list(alerts.labels), registry=self.registry)
        self.registry.register(_StaticCollector(lambda: self.config))

    def attach(self, service: RunService, config: MonitoringConfig | None = None) -> None:
        """Start reporting from the database (at startup, once it is migrated)."""
        if config is not None:
            self.config = config
        self.registry.register(_DatabaseCollector(service, self.config))


class MetricsMiddleware:
    """Counts requests by route template (not raw path, to keep label cardinality bounded)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._templates: dict[tuple[int, str], str] = {}  # (route id, its path) -> full template

    def _template(self, scope: Scope) -> str:
        """The matched route's full path template: a route of an included router knows only its own part
        (`/runs/{run_id}`), so the prefix is taken from the request path once per route."""
        route = scope.get("route")
        own = str(getattr(route, "path", "") or "")
        if not own:
            return "unmatched"
        key = (id(route), own)
        template = self._templates.get(key)
        if template is None:
            path = str(scope.get("path", ""))
            depth = own.count("/")
            parts = path.split("/")
            prefix = "/".join(parts[: len(parts) - depth]) if depth < len(parts) else ""
            template = self._templates[key] = prefix + own if len(self._templates) < 1000 else own
        return template

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            path = self._template(scope)
            self.metrics.requests.labels(scope["method"], path, str(status)).inc()
            self.metrics.latency.labels(scope["method"], path).observe(time.perf_counter() - started)
