"""The FastAPI application factory. `project.app.asgi:app` builds it from $SETTINGS_MODULE.

One engine per app, created in the lifespan and disposed at shutdown: an AsyncEngine (routes on an
AsyncSession) when DATABASE_URL names an async driver, an Engine (routes on a Session) otherwise. With
MIGRATE_ON_STARTUP the lifespan first runs the same migrate as `manage.py migrate`, under the migration
lock, so any number of workers or replicas may start at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from project.app import api
from project.core import db
from project.core.conf import Settings, load_settings
from project.core.serving import fleet, health
from project.core.serving.startup import migrate_on_startup


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new application for `settings` (default: $SETTINGS_MODULE's). Nothing connects until start-up."""
    settings = settings or load_settings()
    app = FastAPI(
        title="fastapi-manage demo",
        summary="Users and posts over SQLAlchemy 2, migrated by Alembic through manage.py.",
        debug=bool(settings.get("DEBUG", False)),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.include_router(health.router)
    app.include_router(api.router)
    return app


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    if settings.get("MIGRATE_ON_STARTUP", False):
        # Alembic is synchronous; a worker thread keeps the event loop (and signals) responsive. On an
        # async driver the migration runs there on a loop of its own (project.core.db.sync_entry):
        # Alembic must not be driven from inside the server's running loop (alembic #1353).
        await run_in_threadpool(migrate_on_startup, settings)
    app.state.is_async = db.is_async_url(settings.DATABASE_URL)
    if app.state.is_async:
        async_engine = db.async_engine_from_settings(settings, sqlite_begin=db.APP_SQLITE_BEGIN)
        app.state.sessionmaker = db.async_session_factory(async_engine)
        app.state.engine = async_engine
    else:
        engine = db.engine_from_settings(settings, sqlite_begin=db.APP_SQLITE_BEGIN)
        app.state.sessionmaker = db.session_factory(engine)
        app.state.engine = engine
    app.state.migrations = await run_in_threadpool(health.MigrationState.load, settings)
    # This instance's row in the fleet, which migrate reads before a contract revision (docs/phases.md).
    membership = await fleet.join(settings, app.state.migrations.script, app.state.engine)
    app.state.fleet = membership  # /health/ready: a newer release's expand revisions keep a member ready
    try:
        yield
    finally:
        await membership.leave()
        if app.state.is_async:
            await async_engine.dispose()
        else:
            engine.dispose()
