"""The body of POST /api/v1/alerts: Alertmanager's webhook payload (version 4), bounded, and the answer.

Fields Alertmanager may add later are ignored; URLs it carries (`generatorURL`, `externalURL`) are
accepted but never called nor passed on."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

MAX_ALERTS = 1000  # per notification (the shipped alertmanager.yml sends at most 100)
MAX_ENTRIES = 64  # labels or annotations per alert
Name = Annotated[str, StringConstraints(min_length=1, max_length=128)]
LabelValue = Annotated[str, StringConstraints(max_length=1024)]
AnnotationValue = Annotated[str, StringConstraints(max_length=4096)]
AlertStatus = Literal["firing", "resolved"]

T0 = "2025-01-01T12:00:00Z"
ALERT: dict[str, Any] = {
    "status": "firing",
    "labels": {"alertname": "MlopsNoLiveWorker", "severity": "critical"},
    "annotations": {"summary": "No worker is alive"},
    "startsAt": T0,
    "endsAt": "0001-01-01T00:00:00Z",
    "generatorURL": "http://prometheus:9090/graph?g0.expr=max%28mlops_workers_live%29+%3C+1",
    "fingerprint": "5f1b2a7c9d3e4f60",
}
ALERT_ID = "alert-3b5d8f0a1c2e4b6d8f0a1c2e4b6d8f0a1c2e4b6d"


def _examples(*examples: Any) -> ConfigDict:
    return ConfigDict(extra="ignore", populate_by_name=True, json_schema_extra={"examples": list(examples)})


class AlertIn(BaseModel):
    """One alert as Alertmanager sends it."""

    model_config = _examples(ALERT)

    status: AlertStatus
    labels: dict[Name, LabelValue] = Field(max_length=MAX_ENTRIES)
    annotations: dict[Name, AnnotationValue] = Field(default_factory=dict, max_length=MAX_ENTRIES)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(default=None, alias="endsAt", description="year 1 while firing")
    generator_url: str = Field(default="", alias="generatorURL", max_length=4096, description="never used")
    fingerprint: str = Field(pattern=r"^[0-9a-f]{1,64}$", description="Alertmanager's id of the label set")

    def notification(self) -> dict[str, Any]:
        """What the webhooks receive as `alert` (no URL of the sender's; times in UTC, so one instant
        always gives the same alert id)."""
        ends = self.ends_at if self.ends_at is not None and self.ends_at.year > 1 else None
        return {
            "status": self.status,
            "fingerprint": self.fingerprint,
            "labels": self.labels,
            "annotations": self.annotations,
            "starts_at": _utc(self.starts_at),
            "ends_at": _utc(ends) if ends is not None else None,
        }


def _utc(moment: datetime) -> str:
    """RFC 3339 in UTC (a time without an offset is taken as UTC, as Alertmanager means it)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat()


class AlertmanagerPayload(BaseModel):
    """Alertmanager's webhook notification (`webhook_configs`, payload version 4)."""

    model_config = _examples(
        {
            "version": "4",
            "groupKey": '{}:{alertname="MlopsNoLiveWorker"}',
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "mlops-gateway",
            "groupLabels": {"alertname": "MlopsNoLiveWorker"},
            "commonLabels": ALERT["labels"],
            "commonAnnotations": ALERT["annotations"],
            "externalURL": "http://alertmanager:9093",
            "alerts": [ALERT],
        }
    )

    version: Literal["4"]
    status: AlertStatus
    receiver: str = Field(default="", max_length=256)
    group_key: str = Field(default="", alias="groupKey", max_length=8192)
    truncated_alerts: int = Field(default=0, alias="truncatedAlerts", ge=0)
    alerts: list[AlertIn] = Field(min_length=1, max_length=MAX_ALERTS)


class AlertQueued(BaseModel):
    """One alert received: its id (for its delivery log) and how many webhook deliveries it queued (0
    when Alertmanager sent it again, or no webhook subscribes to its event)."""

    model_config = _examples(
        {"id": ALERT_ID, "fingerprint": ALERT["fingerprint"], "status": "firing", "queued": 1}
    )

    id: str
    fingerprint: str
    status: AlertStatus
    queued: int


class AlertsReceived(BaseModel):
    """The answer to Alertmanager."""

    model_config = _examples(
        {
            "received": 1,
            "queued": 1,
            "alerts": [
                {"id": ALERT_ID, "fingerprint": ALERT["fingerprint"], "status": "firing", "queued": 1}
            ],
        }
    )

    received: int
    queued: int
    alerts: list[AlertQueued]
