"""Engines built from settings. One engine per application; migrations get their own.

Every URL of the driver table of docs/settings.md works, sync or async. A sync driver gives a plain Engine.
An async driver (aiosqlite, asyncpg, psycopg_async, asyncmy, aiomysql) gives the application an
AsyncEngine, and the tool (migrations, the lock, showmigrations...) that AsyncEngine's `sync_engine`:
the synchronous Connection API over the async driver, which is what Alembic's async template hands
env.py through `connection.run_sync`. Its calls must run inside SQLAlchemy's `greenlet_spawn`;
`sync_entry` enters it once, around a whole command or start-up migration, so the lock, the plan and
Alembic run unchanged on the one connection that holds the lock.

SQLite is set up to behave like the servers: every connection enforces foreign keys, and DDL runs
in real transactions. Migrations switch enforcement off for their connection (see migrations/env.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from sqlalchemy import Connection, DateTime, Engine, create_engine, event, make_url
from sqlalchemy.types import TypeDecorator

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
    from sqlalchemy.orm import Session, sessionmaker

P = ParamSpec("P")
T = TypeVar("T")


def is_async_url(url: Any) -> bool:
    """Whether the URL names an asyncio driver (only the dialect class is loaded, not the driver)."""
    return bool(getattr(make_url(url).get_dialect(), "is_async", False))


def create_engine_for(url: Any, *, echo: bool = False, sqlite_begin: str = "BEGIN", **kwargs: Any) -> Engine:
    """A synchronous Engine for any URL, with the fixes each dialect needs.

    For an async driver this is the AsyncEngine's `sync_engine`: use it inside `sync_entry`.
    `sqlite_begin` is the statement that opens a SQLite transaction (see `APP_SQLITE_BEGIN`).
    """
    if is_async_url(url):
        return create_async_engine_for(url, echo=echo, sqlite_begin=sqlite_begin, **kwargs).sync_engine
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
    # SQLite: SQLAlchemy's default pool for a file keeps connections open between requests.
    engine = create_engine(parsed, echo=echo, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        _configure_sqlite(engine, sqlite_begin)
    return engine


def create_async_engine_for(url: Any, *, echo: bool = False, sqlite_begin: str = "BEGIN",
                            **kwargs: Any) -> AsyncEngine:
    """An AsyncEngine for an async URL, with the same per-dialect fixes as `create_engine_for`."""
    from sqlalchemy.ext.asyncio import create_async_engine

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
    if parsed.get_driver_name() == "asyncmy":
        # asyncmy logs every server note (SHOW WARNINGS: "Name 'pk_users' ignored for PRIMARY key") as a
        # WARNING, which reaches stderr; PyMySQL and aiomysql keep them to themselves. Do the same.
        import logging

        logging.getLogger("asyncmy").setLevel(logging.ERROR)
    engine = create_async_engine(parsed, echo=echo, **kwargs)
    if parsed.get_driver_name() == "asyncpg":
        _wrap_asyncpg_connect_errors(engine.sync_engine)
        from project.core import asyncpg_simple

        asyncpg_simple.install(engine.sync_engine)  # one round trip per DDL statement, not two
    if parsed.get_backend_name() == "sqlite":
        # Events of an AsyncEngine are registered on its sync_engine (SQLAlchemy's asyncio docs).
        _configure_sqlite(engine.sync_engine, sqlite_begin)
    return engine


def _wrap_asyncpg_connect_errors(engine: Engine) -> None:
    """asyncpg's errors while connecting (refused, unknown host, wrong password, no such database) come
    out raw or as a generic DBAPIError, where every other driver raises OperationalError: raise that
    instead, so one handler (and project.core.errors) words them the same for every driver."""

    @event.listens_for(engine, "do_connect")
    def _connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        dbapi = dialect.loaded_dbapi
        try:
            return dialect.connect(*cargs, **cparams)
        except dbapi.OperationalError:
            raise
        except (OSError, dbapi.Error) as exc:
            message = " ".join(str(exc).split()) or type(exc).__name__
            if isinstance(exc, OSError) and exc.errno and exc.errno > 0:
                # "[Errno 111] Connect call failed (...)": lead with the words other drivers use.
                message = f"{os.strerror(exc.errno)}: {message}"
            raise dbapi.OperationalError(message) from exc


SQLITE_BUSY_TIMEOUT_MS = 30_000


def _configure_sqlite(engine: Engine, begin: str) -> None:
    """Foreign keys enforced as on the servers, and DDL inside real transactions.

    pysqlite (and aiosqlite over it) would otherwise not BEGIN before DDL, so a failed revision could
    leave half its DDL behind; SQLAlchemy's documented recipe hands transaction control to us. The
    foreign_keys pragma is per connection and a no-op inside a transaction: set on connect.
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        set_sqlite_foreign_keys(dbapi_connection, True)
        cursor = dbapi_connection.cursor()
        try:
            # Wait for another connection's write lock as long as a server would wait for a row lock,
            # not the driver's 5 s: under a burst of requests a writer can wait longer than that.
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            return  # Alembic's autocommit_block (VACUUM, say): no transaction, as asked
        raw = connection.connection.dbapi_connection
        if raw.isolation_level is not None:
            # Leaving AUTOCOMMIT, SQLAlchemy sets the driver's isolation_level to "" (its implicit BEGINs back
            # on); the recipe needs None, so that this BEGIN is the only one.
            raw.isolation_level = None
        # A connection may ask for its own (migrate's revisions: BEGIN IMMEDIATE, project.core.runner.timeouts).
        connection.exec_driver_sql(connection.get_execution_options().get("sqlite_begin", begin))


def set_sqlite_foreign_keys(dbapi_connection: Any, on: bool) -> None:
    """PRAGMA foreign_keys on a DBAPI connection, bypassing SQLAlchemy (no autobegin, no events)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    finally:
        cursor.close()


@contextmanager
def sqlite_foreign_keys_off(connection: Connection) -> Iterator[None]:
    """Foreign-key enforcement off on a SQLite connection for the block (migrations), then back on.

    The pragma is a no-op inside a transaction, so it goes straight to the DBAPI connection before
    any BEGIN; a connection handed over mid-transaction keeps whatever it had.
    """
    if connection.in_transaction():
        yield
        return
    raw = connection.connection.dbapi_connection
    set_sqlite_foreign_keys(raw, False)
    try:
        yield
    finally:
        if not connection.closed and not connection.in_transaction():
            set_sqlite_foreign_keys(raw, True)


def check_sqlite_foreign_keys(connection: Connection) -> None:
    """PRAGMA foreign_key_check; any row that refers to nothing raises IntegrityError naming its table."""
    import sqlite3
    from collections import Counter

    from sqlalchemy.exc import IntegrityError

    rows = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if not rows:
        return
    counts = Counter((table, parent) for table, _rowid, parent, _fk in rows)
    found = "; ".join(
        f"{n} row{'s' if n > 1 else ''} of {table} refer{'' if n > 1 else 's'} to {parent} rows that do not exist"
        for (table, parent), n in counts.items()
    )
    raise IntegrityError("PRAGMA foreign_key_check", None,
                         sqlite3.IntegrityError(f"FOREIGN KEY constraint failed (PRAGMA foreign_key_check): {found}"))


# The application's SQLite transactions take the write lock when they begin. A transaction that reads
# first (session.get, then UPDATE) would otherwise fail at once with "database is locked" when another
# request writes: SQLite refuses to upgrade a read lock while a writer waits, whatever the busy timeout.
# Taken up front, the lock is waited for (the driver's 5 s timeout), as a server's row lock would be:
# concurrent requests succeed one after the other instead of answering 500.
APP_SQLITE_BEGIN = "BEGIN IMMEDIATE"


def engine_from_settings(settings: Any, **kwargs: Any) -> Engine:
    """The tool's synchronous engine for settings.DATABASE_URL (any driver; see `sync_entry`)."""
    return create_engine_for(settings.DATABASE_URL, echo=bool(settings.get("SQL_ECHO", False)), **kwargs)


def async_engine_from_settings(settings: Any, **kwargs: Any) -> AsyncEngine:
    return create_async_engine_for(settings.DATABASE_URL, echo=bool(settings.get("SQL_ECHO", False)), **kwargs)


def migration_url(settings: Any) -> str:
    """The URL migrations connect with: MIGRATION_DATABASE_URL (a direct connection, past any pooler)
    when set, else DATABASE_URL, which the application keeps using either way."""
    return str(settings.get("MIGRATION_DATABASE_URL") or settings.DATABASE_URL)


# The application_name of the tool's own PostgreSQL connections (settings_connection: migrate, the lock,
# showmigrations...), unless the URL sets one: pg_stat_activity shows who holds the migration lock, and
# pgpool-II's app_name_redirect_preference_list can send everything they read to the primary (docs/deploy.md).
TOOL_APPLICATION_NAME = "fastapi-manage"


@contextmanager
def settings_connection(settings: Any, url: str | None = None) -> Iterator[Connection]:
    """A synchronous connection to `url` (default: DATABASE_URL) on any driver, on an engine of its own that
    is disposed after; an async driver needs the caller under `sync_entry`."""
    url = url or settings.DATABASE_URL
    with connect(url, echo=bool(settings.get("SQL_ECHO", False)), **_tool_connect_args(url)) as connection:
        yield connection


def _tool_connect_args(url: Any) -> dict[str, Any]:
    """connect_args giving a PostgreSQL connection TOOL_APPLICATION_NAME at login, in the driver's own terms."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql" or "application_name" in parsed.query:
        return {}
    if parsed.get_driver_name() == "asyncpg":
        return {"connect_args": {"server_settings": {"application_name": TOOL_APPLICATION_NAME}}}
    return {"connect_args": {"application_name": TOOL_APPLICATION_NAME}}




@contextmanager
def connect(url: Any, **kwargs: Any) -> Iterator[Connection]:
    """A synchronous Connection on a private engine, disposed at the end; any driver.

    With an async driver, call it inside `sync_entry`: the block then runs as `AsyncConnection.run_sync`
    would run it.
    """
    if is_async_url(url) and not _in_greenlet():
        raise RuntimeError(
            f"{make_url(url).drivername} is an async driver: open its connection inside "
            "project.core.db.sync_entry (SQLAlchemy's greenlet_spawn), called from a thread with no running "
            "event loop (from async code: await starlette.concurrency.run_in_threadpool(...))."
        )
    engine = create_engine_for(url, **kwargs)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def sync_entry(fn: Callable[P, T]) -> Callable[P, T]:
    """Run `fn` where synchronous SQLAlchemy code works on every driver, async ones included.

    The call runs inside SQLAlchemy's `greenlet_spawn` on a private event loop (what
    `AsyncConnection.run_sync` does), so an async driver's awaits are served while `fn` reads
    like sync code. Sync drivers never await: for them this is a plain call. Already inside a
    greenlet, or on a thread whose loop is running (where only sync drivers can work), `fn` is
    called directly. The loop is not `asyncio.run`'s: that one would install its own SIGINT
    handler, and Ctrl-C must still stop a migration at once.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        if _in_greenlet() or _loop_running():
            return fn(*args, **kwargs)
        from sqlalchemy.util import greenlet_spawn

        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(greenlet_spawn(functools.partial(fn, *args, **kwargs)))
        finally:
            loop.close()

    return wrapper


def _in_greenlet() -> bool:
    from sqlalchemy.util.concurrency import in_greenlet

    try:
        return in_greenlet()
    except ImportError:  # no greenlet installed: nothing can be inside one
        return False


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for the application's engine (2.0 style). The app keeps one; requests use it via SessionDep."""
    # The ORM is imported here, not at the top: manage.py commands that only migrate never load it.
    from sqlalchemy.orm import sessionmaker

    # expire_on_commit=False: a response can still read the row it just committed without a new query.
    return sessionmaker(engine, expire_on_commit=False)


def async_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """AsyncSessions for an async application engine; expire_on_commit=False as for `session_factory`
    (an expired attribute would need IO, which an AsyncSession cannot do implicitly)."""
    from sqlalchemy.ext.asyncio import async_sessionmaker

    return async_sessionmaker(engine, expire_on_commit=False)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp that comes back timezone-aware, in UTC, on every engine.

    PostgreSQL's timestamptz answers aware values; SQLite and MySQL/MariaDB store none and answer
    naive ones. Values are normalised to UTC on the way in (naive ones are refused: their zone is a
    guess) and marked UTC on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()}: give it a timezone (UTCDateTime stores UTC)")
        value = value.astimezone(dt.UTC)
        # Engines without zone support would store the local rendering; strip it only there.
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
