"""Runs record their artifacts (type, digest and stored path of each pipeline output).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add runs.artifacts."""
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("artifacts", sa.JSON, nullable=True))


def downgrade() -> None:
    """Drop runs.artifacts."""
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("artifacts")
