"""The app factory. Nothing happens at import: the database is opened and migrated, and worker threads
and the webhook dispatcher start, in the app's lifespan."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool

from mlops_nocode import __version__, web
from mlops_nocode.api import docs
from mlops_nocode.api.auth import Principal, authorize
from mlops_nocode.api.errors import BodyLimit, install_error_handlers
from mlops_nocode.api.metrics import Metrics, MetricsMiddleware, MonitoringConfig
from mlops_nocode.api.routes import alerts as alerts_routes
from mlops_nocode.api.routes import artifacts as artifacts_routes
from mlops_nocode.api.routes import assist as assist_routes
from mlops_nocode.api.routes import auth as auth_routes
from mlops_nocode.api.routes import catalogue, health, pipelines, reports, runs, specs
from mlops_nocode.api.routes import metrics as metrics_routes
from mlops_nocode.api.routes import models as models_routes
from mlops_nocode.api.routes import monitoring as monitoring_routes
from mlops_nocode.api.routes import playbooks as playbooks_routes
from mlops_nocode.api.routes import secrets as secrets_routes
from mlops_nocode.api.routes import services as services_routes
from mlops_nocode.api.routes import session as session_routes
from mlops_nocode.api.routes import sessions as sessions_routes
from mlops_nocode.api.routes import webhooks as webhooks_routes
from mlops_nocode.api.schemas import ErrorOut
from mlops_nocode.api.state import Gateway
from mlops_nocode.hosts import HostPolicy
from mlops_nocode.integrations.litellm.preflight import route_problems
from mlops_nocode.integrations.litellm.routes import key_secret_names
from mlops_nocode.runs.db import Database
from mlops_nocode.runs.keys import KeyStore
from mlops_nocode.runs.notify_targets import RunTargets
from mlops_nocode.runs.recovery import Recovery
from mlops_nocode.runs.service import RunService
from mlops_nocode.runs.sessions import SessionStore
from mlops_nocode.runs.vault import SecretStore
from mlops_nocode.runs.webhook_dispatch import Dispatcher
from mlops_nocode.runs.webhooks import Notifier, WebhookStore
from mlops_nocode.runs.worker import WorkerThreads
from mlops_nocode.runtime.supervise import Supervisor
from mlops_nocode.settings import Settings, resolve_secret_key

log = logging.getLogger("mlops_nocode.api")

DESCRIPTION = """
The MLOps No-Code gateway. Every route except `/health`, `/`, `/docs`, `/redoc`, `/openapi.json` and
`/logout` needs `Authorization: Bearer <credential>`:
an API key (`mlk_...`) or a short-lived token from `POST /api/v1/auth/token`. GET needs the read scope,
other methods the write scope; `/api/v1/keys` and `/api/v1/sessions` need admin. A browser signed in with
the login URL (`/?token=...`) or `POST /api/v1/session` carries a session cookie instead: its own
credential (read and write by default), accepted only as that cookie; its writes must send the
session's CSRF token as `X-CSRF-Token` (from `GET /api/v1/session`), and it cannot mint tokens or keys.
HEAD and OPTIONS are answered 405.
"""

# What any authenticated route may answer besides its own codes (documented so clients and schema checks
# know them): an unparsable body, a missing/invalid credential, a missing scope, an oversized body.
COMMON: dict[int | str, dict[str, Any]] = {
    400: {"description": "malformed body (not JSON, or nested too deeply)", "model": ErrorOut},
    401: {"description": "missing, invalid or expired credential", "model": ErrorOut},
    403: {"description": "the credential lacks the scope", "model": ErrorOut},
    413: {"description": "body larger than MAX_BODY_BYTES", "model": ErrorOut},
    422: {
        "description": "invalid parameters or body, or an invalid spec with its problems",
        "model": ErrorOut,
    },
}


async def authorize_fast(request: Request) -> Principal:
    """`authorize`, run on the event loop when it needs no I/O (an API key verified moments ago, see
    runs.keys), else in the threadpool as FastAPI runs a plain function: saves a thread hop per request."""
    keys: KeyStore = request.app.state.gateway.keys
    if keys.in_memory(request.headers.get("authorization", "").partition(" ")[2].strip()):
        return authorize(request)
    return await run_in_threadpool(authorize, request)


def open_gateway(settings: Settings, metrics: Metrics | None = None) -> Gateway:
    """Open and migrate the database and build the services (what the lifespan and the CLI share)."""
    secret = resolve_secret_key(settings)
    db = Database(settings.db_url)
    db.migrate(settings.home)
    service = RunService(db)
    m = metrics or Metrics()
    m.attach(service, monitoring_config(settings))
    vault = SecretStore(db, secret)
    service.secret_values = vault.values  # what Runners report is redacted again with these
    service.route_secrets = partial(key_secret_names, settings.home)  # and with the model routes' keys
    service.route_check = lambda plan: route_problems(plan, settings.home)  # launches name known routes
    hooks = WebhookStore(db, vault, HostPolicy.from_settings(settings))
    service.notify_targets = RunTargets(vault, hooks.policy, settings)  # a launch's `notify` list
    notifier = Notifier(hooks, service, settings)
    sessions = SessionStore(db, settings.session_idle_seconds)
    return Gateway(settings, db, service, KeyStore(db), m, secret, vault, hooks, notifier, sessions)


def monitoring_config(settings: Settings) -> MonitoringConfig:
    """What /metrics reads from the settings."""
    return MonitoringConfig(
        settings.monitoring_budget_per_hour,
        settings.monitoring_metric_min,
        None if os.environ.get("ARTIFACT_STORE_URL") else settings.home / "artifacts",
        settings.worker_live_after,
    )


def start_dispatcher(gw: Gateway) -> Dispatcher:
    """Start webhook delivery threads on the gateway's queue (woken by its notifier when it enqueues)."""
    dispatcher = Dispatcher(gw.notifier.queue, gw.secrets, gw.webhooks.policy, gw.settings)
    gw.notifier.on_enqueued = dispatcher.wake
    dispatcher.start()
    return dispatcher


def create_app(settings: Settings | None = None) -> FastAPI:
    """The gateway app; `settings.workers` worker threads run inside it while it serves."""
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gw = open_gateway(settings, metrics)
        app.state.gateway = gw
        workers = WorkerThreads(gw.runs, settings, settings.workers, gw.secret_key, gw.secrets, gw.notifier)
        workers.start()
        gw.runs.on_created = workers.wake
        recovery = Recovery(gw.runs, settings, gw.notifier)
        recovery.start()
        dispatcher = start_dispatcher(gw)
        supervisor = Supervisor(settings.home, gw.secrets.values)
        supervisor.start()
        log.info("gateway ready with %d worker thread(s)", settings.workers)
        try:
            yield
        finally:
            log.info("gateway stopping: worker threads give their runs back")
            recovery.stop()
            workers.stop()
            dispatcher.stop()
            supervisor.stop()
            gw.db.close()

    app = FastAPI(
        title="MLOps No-Code Platform",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        debug=settings.debug,
        docs_url=None,  # served by api.docs, from assets of the gateway itself
        redoc_url=None,
    )
    install_error_handlers(app)
    protected = [Depends(authorize_fast)]
    app.include_router(health.router)
    app.include_router(session_routes.router)
    app.include_router(docs.router)
    app.include_router(pipelines.router, dependencies=protected, responses=COMMON)
    for router in (runs, artifacts_routes, specs, catalogue, secrets_routes, webhooks_routes, models_routes):
        app.include_router(router.router, prefix="/api/v1", dependencies=protected, responses=COMMON)
    app.include_router(playbooks_routes.router, prefix="/api/v1", dependencies=protected, responses=COMMON)
    app.include_router(assist_routes.router, prefix="/api/v1", dependencies=protected, responses=COMMON)
    app.include_router(services_routes.router, prefix="/api/v1", dependencies=protected, responses=COMMON)
    app.include_router(monitoring_routes.router, prefix="/api/v1", dependencies=protected, responses=COMMON)
    app.include_router(alerts_routes.router, prefix="/api/v1", dependencies=protected, responses=COMMON)
    # authenticated with run tokens only (Runners report there)
    app.include_router(reports.router, prefix="/api/v1", responses=COMMON)
    # authenticated per route: a token may be asked with any scope; keys need admin
    app.include_router(auth_routes.router, prefix="/api/v1", responses=COMMON)
    app.include_router(sessions_routes.router, prefix="/api/v1", responses=COMMON)
    if settings.metrics_enabled:
        app.include_router(metrics_routes.router, dependencies=protected, responses=COMMON)
    web.install(app, web.dist_of(settings))  # the no-code UI: its assets, and deep links into it
    if settings.metrics_enabled:
        app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return app
