"""Engines built from settings. One engine per application; migrations get their own."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, make_url

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker


def create_engine_for(url: str, *, echo: bool = False, **kwargs: Any) -> Engine:
    """An engine for `url` with the fixes each dialect needs.

    SQLite: pysqlite would otherwise not BEGIN before DDL, so a failed revision could leave
    half its DDL behind; SQLAlchemy's documented recipe hands transaction control to us.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        # SQLAlchemy's default pool for a SQLite file keeps connections open between requests.
        engine = create_engine(parsed, echo=echo, **kwargs)
        _make_sqlite_transactional(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, echo=echo, **kwargs)


def _make_sqlite_transactional(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")


def engine_from_settings(settings: Any, **kwargs: Any) -> Engine:
    return create_engine_for(settings.DATABASE_URL, echo=bool(settings.get("SQL_ECHO", False)), **kwargs)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for the application's engine (2.0 style). The app keeps one; requests use it via SessionDep."""
    # The ORM is imported here, not at the top: manage.py commands that only migrate never load it.
    from sqlalchemy.orm import sessionmaker

    # expire_on_commit=False: a response can still read the row it just committed without a new query.
    return sessionmaker(engine, expire_on_commit=False)
