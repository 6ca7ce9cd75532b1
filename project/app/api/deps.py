"""Dependencies shared by the routes: the request's database session, pagination, commit with 409.

The app speaks the idiom its DATABASE_URL asks for. A sync driver: a Session per request, used in the
threadpool as sync routes use it. An async driver: an AsyncSession per request, on the event loop, no
thread. Each route's body is written once, as a function of a sync Session, and `Database.run` calls it
in the request's idiom; on an AsyncSession through `AsyncSession.run_sync`, which is how every
AsyncSession method itself runs the ORM (SQLAlchemy's greenlet bridge), so the async path does not
block the loop and both paths run the very same statements.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Concatenate, ParamSpec, TypeVar

from fastapi import Depends, HTTPException, Path, Query, Request, status
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from project.app.models import MAX_ID

P = ParamSpec("P")
T = TypeVar("T")


class Database:
    """The request's session, sync or async; `await db.run(fn, *args)` calls `fn(session, *args)`."""

    def __init__(self, session: Session | AsyncSession):
        self.session = session

    async def run(self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        if isinstance(self.session, AsyncSession):
            return await self.session.run_sync(fn, *args, **kwargs)
        return await run_in_threadpool(fn, self.session, *args, **kwargs)


async def get_database(request: Request) -> AsyncIterator[Database]:
    """One session per request from the app's sessionmaker (one engine per app, see project.app.main)."""
    factory = request.app.state.sessionmaker
    if request.app.state.is_async:
        async with factory() as session:
            yield Database(session)
        return
    session = factory()
    try:
        yield Database(session)
    finally:
        # Closing returns the connection to the pool (a ROLLBACK): blocking IO, so off the loop.
        await run_in_threadpool(session.close)


DatabaseDep = Annotated[Database, Depends(get_database)]


class Pagination:
    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=100, description="Items per page.")] = 20,
        offset: Annotated[int, Query(ge=0, le=MAX_ID, description="Items to skip.")] = 0,
    ):
        self.limit = limit
        self.offset = offset


PaginationDep = Annotated[Pagination, Depends()]


def id_path(what: str) -> Any:
    return Path(ge=1, le=MAX_ID, description=f"The {what}'s id.")


def commit_or_conflict(session: Session, detail: str) -> None:
    """Commit; a unique (or other integrity) violation becomes 409 with `detail`.

    SQLAlchemy wraps each driver's own error (sqlite3, PyMySQL, psycopg2, psycopg, asyncpg, asyncmy,
    aiomysql) in IntegrityError, so one except clause covers every engine and driver.
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
