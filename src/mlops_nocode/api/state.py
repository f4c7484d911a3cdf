"""What the routes share, kept on `app.state` by the app's lifespan."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from mlops_nocode.api.metrics import Metrics
from mlops_nocode.runs.db import Database
from mlops_nocode.runs.keys import KeyStore
from mlops_nocode.runs.service import RunService
from mlops_nocode.runs.sessions import SessionStore
from mlops_nocode.runs.vault import SecretStore
from mlops_nocode.runs.webhooks import Notifier, WebhookStore
from mlops_nocode.settings import Settings

P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class Gateway:
    """The services of one running gateway."""

    settings: Settings
    db: Database
    runs: RunService
    keys: KeyStore
    metrics: Metrics
    secret_key: str
    secrets: SecretStore
    webhooks: WebhookStore
    notifier: Notifier
    sessions: SessionStore

    async def read(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a short database read: inline on SQLite (a local WAL read never waits for writers and
        takes a fraction of a millisecond, less than a hop to the threadpool and back), in the threadpool
        on PostgreSQL (a network round trip)."""
        if self.db.dialect == "sqlite":
            return fn(*args, **kwargs)
        return await run_in_threadpool(fn, *args, **kwargs)


async def gateway(request: Request) -> Gateway:
    """FastAPI dependency: the gateway serving this request (async: FastAPI would run a plain function in
    its threadpool, a thread hop per request for one attribute read)."""
    gw: Gateway = request.app.state.gateway
    return gw
