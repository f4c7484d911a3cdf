"""Notification targets: a webhook's kind (webhook, slack, email, n8n), its e-mail recipients, and the run
a target belongs to (a launch's or its pipeline's `notify` list; NULL for registered webhooks).

Revision ID: 0011_notify
Revises: 0010_monitoring
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_notify"
down_revision: str | None = "0010_monitoring"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add kind, recipients and run_id to webhooks."""
    with op.batch_alter_table("webhooks") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="webhook"))
        batch.add_column(sa.Column("recipients", sa.Text, nullable=True))
        batch.add_column(sa.Column("run_id", sa.String(64), nullable=True))
    op.create_index("ix_webhooks_run_id", "webhooks", ["run_id"])


def downgrade() -> None:
    """Drop them again."""
    op.drop_index("ix_webhooks_run_id", "webhooks")
    with op.batch_alter_table("webhooks") as batch:
        batch.drop_column("run_id")
        batch.drop_column("recipients")
        batch.drop_column("kind")
