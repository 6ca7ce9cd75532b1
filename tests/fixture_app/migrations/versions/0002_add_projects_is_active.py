"""Add projects.is_active, NOT NULL with a server default for existing rows

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 10:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain-string default ("1": true on all three engines) lets SQLite add the column with
    # ALTER TABLE; an expression such as sa.true() would make batch mode copy the whole table.
    with op.batch_alter_table("projects") as batch_op:
        batch_op.add_column(sa.Column("is_active", sa.Boolean(), server_default="1", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch_op:
        batch_op.drop_column("is_active")
