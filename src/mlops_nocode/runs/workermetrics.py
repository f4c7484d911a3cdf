"""`mlops worker --metrics-port N`: the worker process's own /metrics (prometheus_client's process and
platform collectors, and the runs its loops executed), served by prometheus_client's HTTP server so that
Prometheus can scrape each worker (is it up, its memory and CPU). The runs' own families are the
gateway's (read from the shared database)."""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    start_http_server,
)

from mlops_nocode.runs.worker import WorkerThreads

RUNS_EXECUTED = "mlops_worker_runs_executed"


def serve_worker_metrics(pool: WorkerThreads, host: str, port: int) -> tuple[Any, int]:
    """Serve the process's metrics on host:port (port 0: a free one); returns (server, port)."""
    registry = CollectorRegistry()
    registry.register(PROCESS_COLLECTOR)
    registry.register(PLATFORM_COLLECTOR)
    executed = Counter(
        RUNS_EXECUTED,
        "Runs this worker process executed, by how they ended here (a status, released, lost)",
        ["status"],
        registry=registry,
    )
    for status in ("succeeded", "failed", "cancelled"):
        executed.labels(status)
    for w in pool.workers:
        w.on_executed = lambda status: executed.labels(status).inc()
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server, int(server.server_address[1])
