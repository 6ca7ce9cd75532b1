"""Drop items.legacy

Revision ID: 0003
Revises: 0002
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"  # check: ignore-file[L210] a test fixture: its table holds a few hundred rows
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# expand: code written before this revision keeps working; contract: it breaks, so migrate waits for it to stop.
phase: str = "contract"


def upgrade() -> None:
    with op.batch_alter_table("items") as batch_op:
        batch_op.drop_column("legacy")


def downgrade() -> None:
    with op.batch_alter_table("items") as batch_op:
        batch_op.add_column(sa.Column("legacy", sa.String(200), nullable=True))
