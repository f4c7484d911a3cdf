"""/api/v1/alerts: Alertmanager's webhook receiver. Each alert becomes an `alert.firing` or
`alert.resolved` notification on the webhooks subscribed to it (the run notifications' queue, signing
and retries), once per alert fingerprint, status and start however often Alertmanager sends it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from mlops_nocode.api.alert_schemas import AlertmanagerPayload, AlertsReceived
from mlops_nocode.api.schemas import Delivery
from mlops_nocode.api.state import Gateway, gateway
from mlops_nocode.runtime.redaction import Redactor

router = APIRouter(tags=["alerts"])
AlertId = Annotated[str, Path(pattern=r"^alert-[0-9a-f]{40}$", examples=["alert-" + "3b5d8f0a1c" * 4])]


@router.post("/alerts", response_model=AlertsReceived)
def receive_alerts(body: AlertmanagerPayload, gw: Gateway = Depends(gateway)) -> dict[str, Any]:
    """Alertmanager's webhook (payload version 4; write scope): queue a notification per alert. Secret
    values found in labels or annotations are masked; URLs in the payload are never called."""
    redactor = Redactor(gw.secrets.values(info.name for info in gw.secrets.infos()).values())
    answers = []
    for alert in body.alerts:
        note = alert.notification()
        alert_id, queued = gw.notifier.alert_received(redactor.data(note) if redactor else note)
        gw.metrics.alerts_received.labels(alert.status).inc()
        answers.append(
            {"id": alert_id, "fingerprint": alert.fingerprint, "status": alert.status, "queued": queued}
        )
    return {"received": len(answers), "queued": sum(a["queued"] for a in answers), "alerts": answers}


@router.get("/alerts/{alert_id}/deliveries", response_model=list[Delivery])
def alert_deliveries(alert_id: AlertId, gw: Gateway = Depends(gateway)) -> list[dict[str, Any]]:
    """Every webhook delivery attempt of an alert's notifications (firing and resolved), in order."""
    return gw.webhooks.deliveries(alert_id)
