"""/metrics in the Prometheus text format (needs a credential with the read scope)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from mlops_nocode.api.state import Gateway, gateway

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(gw: Gateway = Depends(gateway)) -> Response:
    """Every family of monitoring.names: runs, queue, steps, workers, webhooks, API, costs, storage."""
    return Response(gw.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
