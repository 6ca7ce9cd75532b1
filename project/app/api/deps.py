"""Dependencies shared by the routes: a database session per request, pagination, commit with 409."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, TypeVar

from fastapi import Depends, HTTPException, Query, Request, status
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

T = TypeVar("T")


def get_session(request: Request) -> Iterator[Session]:
    """One session per request from the app's sessionmaker (one engine per app, see project.app)."""
    with request.app.state.sessionmaker() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


class Pagination:
    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=100, description="Items per page.")] = 20,
        offset: Annotated[int, Query(ge=0, description="Items to skip.")] = 0,
    ):
        self.limit = limit
        self.offset = offset


PaginationDep = Annotated[Pagination, Depends()]


def commit_or_conflict(session: Session, detail: str) -> None:
    """Commit; a unique (or other integrity) violation becomes 409 with `detail`.

    SQLAlchemy wraps each driver's own error (sqlite3, PyMySQL, psycopg2) in IntegrityError,
    so one except clause covers every engine.
    """
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, detail) from None


def get_or_404(session: Session, model: type[T], id_: int) -> T:
    """The row with primary key `id_`, or a 404 naming what is missing."""
    row = session.get(model, id_)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{model.__name__} {id_} does not exist.")
    return row
