"""Projects and their tasks: what migrations/versions/0001..0008 build."""

from __future__ import annotations

import enum

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# The same convention a project's models need: named constraints on every engine (SQLite batch mode
# can drop only what has a name).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class TaskState(enum.StrEnum):
    open = "open"
    done = "done"


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(255), unique=True)
    name: Mapped[str | None] = mapped_column(sa.String(200))
    is_active: Mapped[bool] = mapped_column(sa.Boolean, server_default="1")

    tasks: Mapped[list[Task]] = relationship(back_populates="project", cascade="all, delete-orphan")


class Task(Base):
    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("projects.id"))
    title: Mapped[str] = mapped_column(sa.String(200), index=True)
    details: Mapped[str | None] = mapped_column(sa.Text)
    state: Mapped[TaskState] = mapped_column(
        sa.Enum(TaskState, name="task_state", values_callable=lambda e: [m.value for m in e]),
        server_default=TaskState.open.value,
    )

    project: Mapped[Project] = relationship(back_populates="tasks")
