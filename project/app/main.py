"""The FastAPI application factory. `project.app.asgi:app` builds it from $SETTINGS_MODULE.

One engine per app, created in the lifespan and disposed at shutdown. With MIGRATE_ON_STARTUP
the lifespan first runs the same migrate as `manage.py migrate`, under the migration lock, so
any number of workers or replicas may start at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from project.app import api
from project.core import health
from project.core.conf import Settings, load_settings
from project.core.db import engine_from_settings, session_factory
from project.core.startup import migrate_on_startup


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
        # Alembic is synchronous; a worker thread keeps the event loop (and signals) responsive.
        await run_in_threadpool(migrate_on_startup, settings)
    engine = engine_from_settings(settings)
    app.state.engine = engine
    app.state.sessionmaker = session_factory(engine)
    app.state.migrations = await run_in_threadpool(health.MigrationState.load, settings)
    try:
        yield
    finally:
        engine.dispose()
