"""Rename posts.body to posts.content

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 10:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"  # check: ignore-file[L207, L210] the demo's app and history ship together
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("posts") as batch_op:
        batch_op.alter_column("body", new_column_name="content", existing_type=sa.Text(), existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("posts") as batch_op:
        batch_op.alter_column("content", new_column_name="body", existing_type=sa.Text(), existing_nullable=True)
