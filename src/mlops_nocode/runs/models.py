"""The gateway's tables: runs, their events, API keys, browser sessions, secrets, webhooks and their
delivery queue.
Times are UNIX seconds (floats, UTC)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

RUN_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


class Base(DeclarativeBase):
    """Declarative base of every table of the gateway."""


class RunRow(Base):
    """One launch of a pipeline: what to run (the compiled plan), where, and how it went."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    pipeline: Mapped[str] = mapped_column(String(300))
    spec: Mapped[Any] = mapped_column(JSON, nullable=True)
    plan: Mapped[dict[str, Any]] = mapped_column(JSON)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    target: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    details: Mapped[str | None] = mapped_column(Text, nullable=True)
    outputs: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    artifacts: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[float] = mapped_column(Float, index=True)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    worker_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    heartbeat_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    retry_of: Mapped[str | None] = mapped_column(String(64), nullable=True)
    keep: Mapped[bool] = mapped_column(Boolean, default=False)  # keep what was provisioned after the end
    target_label: Mapped[str] = mapped_column(String(64), default="local")  # /metrics' `target` label


class EventRow(Base):
    """One event a run's Runner reported, numbered from 1 within the run (`seq`)."""

    __tablename__ = "run_events"
    __table_args__ = (UniqueConstraint("run_id", "seq"), Index("ix_run_events_type", "type"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(32))
    step: Mapped[str | None] = mapped_column(Text, nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ts: Mapped[float] = mapped_column(Float)


DEPLOYMENT_STATES = ("rendered", "provisioning", "running", "succeeded", "failed", "cancelled", "destroyed")


class DeploymentRow(Base):
    """One deployment of a run (the steps placed on one provider and offer): its state and what exists
    for it (`provisioned`: the provider's Provisioned record, enough to tear it down after a restart)."""

    __tablename__ = "run_deployments"
    __table_args__ = (UniqueConstraint("run_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    provisioned: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    details: Mapped[str | None] = mapped_column(Text, nullable=True)
    price_per_hour: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # billed from (provisioning)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # billed until (destroyed)


class ApiKeyRow(Base):
    """An API key: only the SHA-256 of its random secret is stored."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class BrowserSessionRow(Base):
    """A browser's login session: the cookie holds `mls_<id>_<secret>`; only SHA-256(secret) is stored.
    `csrf_token` is the synchronizer token its unsafe requests must carry (X-CSRF-Token)."""

    __tablename__ = "browser_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(32), index=True)
    scopes: Mapped[str] = mapped_column(String(100))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    last_seen_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class SecretRow(Base):
    """A named secret: only its Fernet ciphertext is stored (key derived from SECRET_KEY, see runs.vault)."""

    __tablename__ = "secrets"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    ciphertext: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class WebhookRow(Base):
    """Where to POST run endings; the signing secret is stored encrypted (like secrets)."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[str] = mapped_column(String(200))
    secret: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)


class DeliveryRow(Base):
    """One attempt to deliver one event of one run to one webhook."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(String(32), index=True)
    run_id: Mapped[str] = mapped_column(String(64), index=True)
    event: Mapped[str] = mapped_column(String(32))
    attempt: Mapped[int] = mapped_column(Integer)
    ok: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    ts: Mapped[float] = mapped_column(Float)


QUEUE_STATES = ("pending", "delivering", "delivered", "failed")


class QueuedDelivery(Base):
    """One event of one run to deliver to one webhook: a durable queue entry, claimed by a dispatcher
    with a lease (`claimed_by`, `claimed_at`) and retried with backoff until delivered or failed."""

    __tablename__ = "webhook_queue"
    __table_args__ = (
        UniqueConstraint("run_id", "webhook_id", "event", name="uq_webhook_queue_run_hook_event"),
        Index("ix_webhook_queue_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(String(32))
    run_id: Mapped[str] = mapped_column(String(64), index=True)
    event: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    claimed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class AssistantConversationRow(Base):
    """One conversation with the assistant, owned by the API key that started it (redacted turns only)."""

    __tablename__ = "assistant_conversations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    messages: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class WorkerRow(Base):
    """A live worker loop (a thread of `mlops up` or of `mlops worker`): it beats every few seconds and
    removes its row when it stops cleanly."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[float] = mapped_column(Float)
    heartbeat_at: Mapped[float] = mapped_column(Float)


class MetricLabelRow(Base):
    """A user string admitted as a value of a metric label (at most LABEL_VALUES_CAP per label)."""

    __tablename__ = "metric_labels"

    label: Mapped[str] = mapped_column(String(32), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the value
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)


class MetricHistogramRow(Base):
    """A histogram of one label set, aggregated as the events arrive (`buckets`: per-bucket counts, not
    cumulative, the last one for +Inf)."""

    __tablename__ = "metric_histograms"

    family: Mapped[str] = mapped_column(String(64), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the labels' JSON
    labels: Mapped[list[str]] = mapped_column(JSON)
    buckets: Mapped[list[int]] = mapped_column(JSON)
    total: Mapped[float] = mapped_column(Float)
    count: Mapped[int] = mapped_column(Integer)


class StepMetricRow(Base):
    """The last value a step reported for a metric in the latest successful run of its pipeline."""

    __tablename__ = "step_metrics"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)  # of (pipeline, step, metric)
    pipeline: Mapped[str] = mapped_column(Text)
    step: Mapped[str] = mapped_column(Text)
    metric: Mapped[str] = mapped_column(Text)
    value: Mapped[float] = mapped_column(Float)
    run_id: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[float] = mapped_column(Float)
