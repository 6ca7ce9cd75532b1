"""Pydantic v2 schemas of the REST API: what clients send (Create/Update) and receive (Read, Page)."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from project.app.models import MAX_ID, PostStatus


def _not_null(value: object) -> object:
    # PATCH fields may be left out, but a column that is NOT NULL cannot be set to null.
    if value is None:
        raise ValueError("may be omitted, but not null")
    return value


def _normalize_email(value: str) -> str:
    # Lower-cased so uniqueness means the same thing on every engine (MySQL compares
    # case-insensitively, PostgreSQL and SQLite do not).
    return value.lower()


Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=255, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
    AfterValidator(_normalize_email),
]
# Lengths are the columns' (models.py): SQLite would store a longer string silently where MySQL and
# PostgreSQL refuse it, so the API refuses it first, with a 422, on every engine.
Name = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# posts.content is TEXT: unbounded on SQLite and PostgreSQL, 65,535 bytes on MySQL/MariaDB, which is
# 16,383 characters of 4-byte utf8mb4 at worst.
CONTENT_MAX = 65_535 // 4
Content = Annotated[str, StringConstraints(max_length=CONTENT_MAX)]
# The largest id the models' keys hold (project.app.models.MAX_ID): a 422 here, not a 500 from PostgreSQL.
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    name: Name | None = None
    is_active: bool = True


class UserUpdate(BaseModel):
    """PATCH body: only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    email: Email | None = None
    name: Name | None = None
    is_active: bool | None = None

    _required = field_validator("email", "is_active")(_not_null)


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    name: str | None
    is_active: bool


class PostCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: Id
    title: Title
    content: Content | None = None
    status: PostStatus = PostStatus.draft


class PostUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    content: Content | None = None
    status: PostStatus | None = None

    _required = field_validator("title", "status")(_not_null)


class PostRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    title: str
    content: str | None
    status: PostStatus


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(description="Rows in the whole collection.")
    limit: int
    offset: int
