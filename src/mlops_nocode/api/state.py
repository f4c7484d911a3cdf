"""What the routes share, kept on `app.state` by the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from mlops_nocode.api.metrics import Metrics
from mlops_nocode.runs.db import Database
from mlops_nocode.runs.keys import KeyStore
from mlops_nocode.runs.service import RunService
from mlops_nocode.runs.vault import SecretStore
from mlops_nocode.runs.webhooks import Notifier, WebhookStore
from mlops_nocode.settings import Settings


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


async def gateway(request: Request) -> Gateway:
    """FastAPI dependency: the gateway serving this request (async: FastAPI would run a plain function in
    its threadpool, a thread hop per request for one attribute read)."""
    gw: Gateway = request.app.state.gateway
    return gw
