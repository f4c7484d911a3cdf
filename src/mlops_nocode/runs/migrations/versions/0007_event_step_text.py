"""Event step ids are text of any length (pipelines nested many levels deep have long namespaced ids).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """run_events.step: VARCHAR(300) -> TEXT."""
    with op.batch_alter_table("run_events") as batch:
        batch.alter_column("step", type_=sa.Text, existing_type=sa.String(300), existing_nullable=True)


def downgrade() -> None:
    """run_events.step back to VARCHAR(300) (longer ids are cut)."""
    with op.batch_alter_table("run_events") as batch:
        batch.alter_column("step", type_=sa.String(300), existing_type=sa.Text, existing_nullable=True)
