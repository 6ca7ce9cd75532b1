"""The demo domain: users and their posts. The migrations in migrations/versions build this schema."""

from __future__ import annotations

import enum

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Named constraints: SQLite batch mode can only drop what has a name, and the names then
# match on every engine (shared/PITFALLS.md). Keep the migrations' explicit names in step.
# column_0_N_name names a multi-column constraint after all its columns (column_0_name: the first
# only, so (a, b) and (a, c) would collide); for one column both give the same name.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

# The largest id an Integer primary key holds: 32-bit on every engine. A larger value in a request is
# refused by PostgreSQL with an error, while SQLite and MySQL quietly find nothing, so the API's ids and
# offsets are bounded by it (project.app.api.deps, project.app.schemas). BigInteger keys: 2**63 - 1.
MAX_ID = 2**31 - 1


class PostStatus(enum.StrEnum):
    draft = "draft"
    published = "published"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(255), unique=True)
    name: Mapped[str | None] = mapped_column(sa.String(200))
    # "1" rather than sa.true(): the same text on every engine, and SQLite can ALTER it in (see 0002).
    is_active: Mapped[bool] = mapped_column(sa.Boolean, server_default="1")

    posts: Mapped[list[Post]] = relationship(back_populates="author", cascade="all, delete-orphan")


class Post(Base):
    __tablename__ = "posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(sa.String(200), index=True)
    content: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[PostStatus] = mapped_column(
        sa.Enum(PostStatus, name="post_status", values_callable=lambda e: [m.value for m in e]),
        server_default=PostStatus.draft.value,
    )

    author: Mapped[User] = relationship(back_populates="posts")
