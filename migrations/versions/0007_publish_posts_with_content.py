"""Data: publish the posts that have content

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
# refuse a VARCHAR for the post_status column ("expression is of type character varying").
posts = sa.table(
    "posts",
    sa.column("status", sa.Enum("draft", "published", name="post_status")),
    sa.column("content", sa.Text()),
)


def upgrade() -> None:
    op.execute(posts.update().where(posts.c.content.is_not(None)).values(status="published"))


def downgrade() -> None:
    op.execute(posts.update().where(posts.c.status == "published").values(status="draft"))
