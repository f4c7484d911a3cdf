"""The assistant's conversations, one owner (API key) each.

Revision ID: 0009_assistant
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_assistant"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Table assistant_conversations."""
    op.create_table(
        "assistant_conversations",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("messages", sa.JSON, nullable=False),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_assistant_conversations_owner", "assistant_conversations", ["owner"])


def downgrade() -> None:
    """Drop it."""
    op.drop_index("ix_assistant_conversations_owner", "assistant_conversations")
    op.drop_table("assistant_conversations")
