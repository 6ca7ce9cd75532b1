"""Add tasks.state, an enum with a server default

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 10:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# On PostgreSQL the enum is a named TYPE: created before the column, dropped after it
# (drop_column does not drop it, and a leftover type breaks the next upgrade). Elsewhere
# create()/drop() do nothing: MySQL has an inline ENUM, SQLite a VARCHAR.
task_state = sa.Enum("open", "done", name="task_state")


def upgrade() -> None:
    task_state.create(op.get_bind(), checkfirst=False)
    with op.batch_alter_table("tasks") as batch_op:
        batch_op.add_column(sa.Column("state", task_state, server_default="open", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch_op:
        batch_op.drop_column("state")
    task_state.drop(op.get_bind(), checkfirst=False)
