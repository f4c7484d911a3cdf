"""`mlops up` (the gateway and its worker threads) and `mlops worker` (extra worker processes)."""

from __future__ import annotations

import json
import logging
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from mlops_nocode.cli.report import err, fail
from mlops_nocode.settings import Settings, SettingsError, write_private
from mlops_nocode.spec import Problem

CREDENTIALS_FILE = "credentials.json"
GRACEFUL_SECONDS = 5

HostOpt = Annotated[str | None, typer.Option("--host", help="Address to bind (default: HOST or 127.0.0.1)")]
PortOpt = Annotated[int | None, typer.Option("--port", min=0, max=65535, help="Port (default: PORT or 8000)")]
WorkersOpt = Annotated[
    int | None, typer.Option("--workers", min=0, max=64, help="Worker threads (default: WORKERS or 2)")
]


def _settings(**overrides: Any) -> Settings:
    from mlops_nocode.runtime.limits import load_limits

    try:
        load_limits()  # the worker threads' Runners read them: refuse bad values before starting
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValueError as e:
        fail([Problem(f"invalid settings: {e}", "environment", "fix or unset the variable")])


def credentials_path(settings: Settings) -> Path:
    return settings.home / CREDENTIALS_FILE


def read_credentials(settings: Settings) -> dict[str, str]:
    """The URL and API key `mlops up` stored for the CLI (empty when there are none)."""
    try:
        data = json.loads(credentials_path(settings).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _check_sandbox(workers: int) -> None:
    """Refuse to run others' steps unconfined unless STEP_SANDBOX=none says so (runtime/sandbox.py)."""
    if not workers:
        return
    from mlops_nocode.runtime.sandbox import SandboxError, server_check

    try:
        conf = server_check()
    except SandboxError as e:
        fail([Problem(str(e), "STEP_SANDBOX", "see the step sandbox in docs/STEPS.md")])
    for note in conf.notes:
        err.print(f"[yellow]warning:[/] step sandbox: {note}", soft_wrap=True)


def _check_serving() -> None:
    """The SERVE_* settings the gateway supervises services with (runtime/supervise.py)."""
    from mlops_nocode.runtime.services import ServiceError, load_settings

    try:
        load_settings()
    except ServiceError as e:
        fail([Problem(str(e), "SERVE_*", "see the settings of serve steps in docs/STEPS.md")])


def _open(settings: Settings) -> Any:
    from mlops_nocode.api.app import open_gateway

    try:
        return open_gateway(settings)
    except SettingsError as e:
        fail([Problem(str(e), "SECRET_KEY", "set a strong SECRET_KEY, or bind to 127.0.0.1")])


def up(host: HostOpt = None, port: PortOpt = None, workers: WorkersOpt = None) -> None:
    """Start the gateway on HOST:PORT with its worker threads; prints a login URL on first start."""
    import uvicorn

    from mlops_nocode.api.app import create_app

    settings = _settings(host=host, port=port, workers=workers)
    _logging(settings.debug)
    _check_sandbox(settings.workers)
    _check_serving()
    _check_port_free(settings.host, settings.port)
    gw = _open(settings)
    base = f"http://{'127.0.0.1' if settings.host in ('0.0.0.0', '::') else settings.host}:{settings.port}"
    stored = read_credentials(settings)
    if gw.keys.count() == 0:
        _, value = gw.keys.create("admin", ["admin"])
        stored = {"url": base, "key": value}
        write_private(credentials_path(settings), json.dumps(stored) + "\n")
        err.print("[green]✓[/] created the admin API key (kept for the CLI in MLOPS_HOME/credentials.json)")
        err.print(f"login: {base}/?token={value}", soft_wrap=True)
    else:
        if stored.get("key") and gw.keys.check(stored["key"]) is not None:  # this gateway's key: new URL
            stored["url"] = base
            write_private(credentials_path(settings), json.dumps(stored) + "\n")
        err.print(
            f"login: {base}/?token=<an API key> (the admin key created at first start is in "
            "MLOPS_HOME/credentials.json)",
            soft_wrap=True,
        )
    gw.db.close()
    docs = f"API docs: {base}/docs"
    err.print(f"gateway on {base} ({docs}), {settings.workers} worker thread(s)", soft_wrap=True)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SECONDS,  # open log streams must not hold the shutdown
    )


def _logging(debug: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    if not debug:  # one line per request of the Runners' reports otherwise
        logging.getLogger("httpx").setLevel(logging.WARNING)
        logging.getLogger("httpcore").setLevel(logging.WARNING)


def _check_port_free(host: str, port: int) -> None:
    """Fail before anything starts (or is printed) when HOST:PORT is taken."""
    import socket

    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            fail(
                [
                    Problem(
                        f"cannot listen on {host}:{port}: {e.strerror or e}",
                        "--port" if e.errno == 98 else "--host",
                        "stop the server using that port, or pick another with --port (or PORT)"
                        if e.errno == 98
                        else "give an address of this machine with --host (or HOST)",
                    )
                ]
            )


def worker(
    threads: Annotated[int, typer.Option("--threads", min=1, max=64, help="Worker threads")] = 1,
    gateway: Annotated[
        str | None,
        typer.Option(
            "--gateway",
            help="URL of the gateway the runs report to (default: GATEWAY_URL, else the URL `mlops up` "
            "stored in MLOPS_HOME/credentials.json)",
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=0,
            max=65535,
            help="Serve this process's own /metrics (process, runs executed) on this port (0: a free one)",
        ),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option("--metrics-host", help="Address of --metrics-port (default: loopback only)")
    ] = "127.0.0.1",
) -> None:
    """Run workers that claim runs from the gateway's database, and webhook deliveries, until SIGTERM or
    Ctrl-C (a run in progress goes back to the queue); their Runners report to the gateway over HTTP.
    Webhook hosts are checked with this process's HOST and WEBHOOK_ALLOWED_HOSTS: give it the gateway's."""
    from mlops_nocode.api.app import start_dispatcher
    from mlops_nocode.runs.worker import WorkerThreads

    settings = _settings(gateway_url=gateway)
    stored_url = read_credentials(settings).get("url")
    if settings.gateway_url is None and stored_url:
        settings = _settings(gateway_url=stored_url)
    _check_sandbox(threads)
    _check_gateway(settings.report_url)
    _logging(settings.debug)
    gw = _open(settings)
    pool = WorkerThreads(gw.runs, settings, threads, gw.secret_key, gw.secrets, gw.notifier)
    done = threading.Event()

    def stop(signum: int, frame: object) -> None:
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    pool.start()
    dispatcher = start_dispatcher(gw)
    if metrics_port is not None:
        from mlops_nocode.runs.workermetrics import serve_worker_metrics

        try:
            _, bound = serve_worker_metrics(pool, metrics_host, metrics_port)
        except OSError as e:
            pool.stop()
            dispatcher.stop()
            err.print(f"[red]error:[/] --metrics-port: cannot listen on {metrics_host}:{metrics_port}: {e}")
            raise typer.Exit(2) from None
        err.print(f"worker metrics at http://{metrics_host}:{bound}/metrics", soft_wrap=True)
    err.print(
        f"worker ready ({threads} thread(s), webhook deliveries) on {settings.db_url.split('://')[0]}, "
        f"reporting to {settings.report_url}",
        soft_wrap=True,
    )
    while not done.wait(0.5):
        pass
    pool.stop()
    dispatcher.stop()
    gw.db.close()


def _check_gateway(url: str) -> None:
    """Warn (runs would wait for it) when the gateway does not answer at `url`."""
    import httpx

    try:
        httpx.get(f"{url}/health", timeout=5).raise_for_status()
    except httpx.HTTPError as e:
        err.print(
            f"[yellow]warning:[/] the gateway does not answer at {url} ({e}); runs claimed here report "
            "to it: start `mlops up`, or pass --gateway URL",
            soft_wrap=True,
        )
