"""/api/v1/webhooks (register, list, delete) and /api/v1/runs/{id}/deliveries (the delivery log)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Response, status

from mlops_nocode.api.schemas import Delivery, WebhookCreated, WebhookIn, WebhookOut
from mlops_nocode.api.state import Gateway, gateway
from mlops_nocode.hosts import HostRefused

router = APIRouter(tags=["webhooks"])


@router.post("/webhooks", status_code=status.HTTP_201_CREATED, response_model=WebhookCreated)
def create_webhook(body: WebhookIn, gw: Gateway = Depends(gateway)) -> dict[str, Any]:
    """Register a webhook (`type`: webhook, n8n, slack, or email when SMTP_HOST is set); its secret (given
    or generated) is in this answer only. A URL the host policy refuses (link-local, private beyond
    loopback, not in WEBHOOK_ALLOWED_HOSTS) is 422 at `body.url`."""
    if body.type == "email" and not gw.settings.smtp_host:
        msg = "e-mail notifications are off on this gateway: set SMTP_HOST (and SMTP_FROM...) first"
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY, [{"loc": ["body", "type"], "msg": msg, "type": "smtp_off"}]
        )
    try:
        return gw.webhooks.create(body.url, list(body.events), body.secret, body.type, body.to)
    except HostRefused as e:
        problem = {"loc": ["body", "url"], "msg": f"webhook URL refused: {e}", "type": "url_refused"}
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, [problem]) from None
    except ValueError as e:
        problem = {"loc": ["body", "events"], "msg": str(e), "type": "value_error"}
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, [problem]) from None
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, [problem]) from None


@router.get("/webhooks", response_model=list[WebhookOut])
def list_webhooks(gw: Gateway = Depends(gateway)) -> list[dict[str, Any]]:
    """Every webhook (never its secret)."""
    return gw.webhooks.all()


@router.delete(
    "/webhooks/{hook_id}", status_code=status.HTTP_204_NO_CONTENT, responses={404: {"description": "none"}}
)
def delete_webhook(hook_id: str, gw: Gateway = Depends(gateway)) -> Response:
    """Stop sending to a webhook (its delivery log stays)."""
    if not gw.webhooks.delete(hook_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no webhook {hook_id}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/runs/{run_id}/deliveries",
    response_model=list[Delivery],
    responses={404: {"description": "no such run"}},
)
def run_deliveries(run_id: str, gw: Gateway = Depends(gateway)) -> list[dict[str, Any]]:
    """Every webhook delivery attempt for the run, in order (status code or error of each)."""
    gw.runs.get(run_id)
    return gw.webhooks.deliveries(run_id)
