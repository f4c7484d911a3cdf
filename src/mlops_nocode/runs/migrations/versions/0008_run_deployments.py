"""Runs record their deployments (state, and what was provisioned for each) and whether to keep them.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """runs.keep; table run_deployments."""
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("keep", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "run_deployments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("provisioned", sa.JSON, nullable=True),
        sa.Column("details", sa.Text, nullable=True),
        sa.Column("price_per_hour", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("run_id", "name"),
    )
    op.create_index("ix_run_deployments_run_id", "run_deployments", ["run_id"])


def downgrade() -> None:
    """Drop them."""
    op.drop_index("ix_run_deployments_run_id", "run_deployments")
    op.drop_table("run_deployments")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("keep")
