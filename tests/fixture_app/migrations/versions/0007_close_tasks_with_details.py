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

# A lightweight table: the data migration must not depend on today's models. Its columns are typed as
# the schema at 0006 has them: drivers that send typed parameters (psycopg 3, asyncpg) make PostgreSQL
# refuse a VARCHAR for the task_state column ("expression is of type character varying").
tasks = sa.table(
    "tasks",
    sa.column("state", sa.Enum("open", "done", name="task_state")),
    sa.column("details", sa.Text()),
)


def upgrade() -> None:
    op.execute(tasks.update().where(tasks.c.details.is_not(None)).values(state="done"))


def downgrade() -> None:
    op.execute(tasks.update().where(tasks.c.state == "done").values(state="open"))
