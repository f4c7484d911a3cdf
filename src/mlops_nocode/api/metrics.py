"""Prometheus metrics of one app (its own registry): HTTP requests, runs by status, step ends."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlops_nocode.runs.models import RUN_STATUSES
from mlops_nocode.runs.service import RunService


class _RunCollector(Collector):
    """Reads the database at scrape time, so every gateway and worker process agrees."""

    def __init__(self, service: RunService) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        runs, steps = self.service.counts()
        g = GaugeMetricFamily("mlops_runs", "Runs by status", labels=["status"])
        for status in RUN_STATUSES:
            g.add_metric([status], runs.get(status, 0))
        yield g
        s = GaugeMetricFamily("mlops_step_events", "Step ends recorded, by event type", labels=["event"])
        for event in ("step.finished", "step.failed", "step.skipped", "step.cancelled"):
            s.add_metric([event], steps.get(event, 0))
        yield s


class Metrics:
    """The registry and the instruments of one gateway."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mlops_http_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "mlops_http_request_seconds", "HTTP request duration", ["method", "route"], registry=self.registry
        )

    def attach(self, service: RunService) -> None:
        """Start reporting runs and steps from the database (at startup, once it is migrated)."""
        self.registry.register(_RunCollector(service))


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
