"""Data: close the tasks that have details

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 10:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A lightweight table: the data migration must not depend on today's models.
tasks = sa.table("tasks", sa.column("state", sa.String(length=20)), sa.column("details", sa.Text()))


def upgrade() -> None:
    op.execute(tasks.update().where(tasks.c.details.is_not(None)).values(state="done"))


def downgrade() -> None:
    op.execute(tasks.update().where(tasks.c.state == "done").values(state="open"))
