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

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlops_nocode import __version__
from mlops_nocode.api import exposition as expo
from mlops_nocode.monitoring import names
from mlops_nocode.runs import stats
from mlops_nocode.runs.eventstats import STEP_FAMILY, THROTTLE_FAMILY
from mlops_nocode.runs.service import RunService


def _gauge(name: str) -> GaugeMetricFamily:
    m = names.BY_NAME[name]
    return GaugeMetricFamily(m.name, m.help, labels=list(m.labels))


def render_database(service: RunService, config: MonitoringConfig) -> str:
    """The families read from the database (one read transaction), in the text format."""
    snap = stats.read_snapshot(service.db)
    live = sum(1 for age in snap.workers.values() if age <= config.worker_live_after)

    def one(value: dict[str, Any]) -> dict[tuple[str, ...], float]:
        return {(k,): float(v) for k, v in value.items()}

    parts = [
        expo.scalar("mlops_runs_started", {k: float(v) for k, v in snap.started.items()}),
        expo.scalar("mlops_runs_finished", {k: float(v) for k, v in snap.finished.items()}),
        expo.histogram("mlops_run_duration_seconds", snap.durations, names.DURATION_BUCKETS),
        expo.scalar("mlops_runs_active", one(snap.active)),
        expo.scalar("mlops_run_heartbeat_age_max_seconds", {(): snap.heartbeat_age_max}),
        expo.scalar("mlops_queue_depth", {(): float(snap.queue_depth)}),
        expo.scalar("mlops_queue_oldest_age_seconds", {(): snap.queue_oldest_age}),
        expo.histogram("mlops_queue_wait_seconds", snap.waits, names.WAIT_BUCKETS),
        expo.histogram(
            "mlops_step_duration_seconds", snap.histograms.get(STEP_FAMILY, {}), names.STEP_BUCKETS
        ),
        expo.histogram(
            "mlops_throttle_wait_seconds", snap.histograms.get(THROTTLE_FAMILY, {}), names.WAIT_BUCKETS
        ),
        expo.scalar("mlops_step_metric", snap.step_metrics),
        expo.scalar("mlops_workers_live", {(): float(live)}),
        expo.scalar("mlops_worker_heartbeat_age_seconds", one(snap.workers)),
        expo.scalar("mlops_webhook_deliveries", one(snap.deliveries)),
        expo.scalar("mlops_webhook_queue", one(snap.webhook_queue)),
        expo.scalar("mlops_cost_per_hour_usd", one(snap.cost_per_hour)),
        expo.scalar("mlops_cost_spent_usd", one(snap.cost_spent)),
    ]
    return "".join(parts)


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
        self.service: RunService | None = None

    def attach(self, service: RunService, config: MonitoringConfig | None = None) -> None:
        """Start reporting from the database (at startup, once it is migrated)."""
        if config is not None:
            self.config = config
        self.service = service

    def exposition(self) -> bytes:
        """The whole /metrics body: the in-process instruments, then the database's families."""
        body = generate_latest(self.registry)
        if self.service is None:
            return body
        return body + render_database(self.service, self.config).encode()


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
