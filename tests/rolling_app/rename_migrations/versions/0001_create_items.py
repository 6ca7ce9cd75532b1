"""Create items (the rename's history: legacy NOT NULL, renamed to note in two phases by makemigrations)

Revision ID: 0001
Revises:
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "items",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("body", sa.String(200), nullable=False),
        sa.Column("legacy", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("items")
