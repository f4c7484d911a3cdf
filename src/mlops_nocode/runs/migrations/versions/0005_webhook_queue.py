"""The durable webhook delivery queue (one row per run end per webhook, with state, attempts and lease).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create webhook_queue."""
    op.create_table(
        "webhook_queue",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("webhook_id", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("last_status", sa.Integer, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("claimed_by", sa.String(200), nullable=True),
        sa.Column("claimed_at", sa.Float, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("run_id", "webhook_id", "event", name="uq_webhook_queue_run_hook_event"),
    )
    op.create_index("ix_webhook_queue_due", "webhook_queue", ["state", "next_attempt_at"])
    op.create_index("ix_webhook_queue_run_id", "webhook_queue", ["run_id"])


def downgrade() -> None:
    """Drop webhook_queue."""
    op.drop_table("webhook_queue")
