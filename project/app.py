"""The FastAPI application factory. `project.asgi:app` builds it from $SETTINGS_MODULE.

One engine per app, created in the lifespan and disposed at shutdown. With MIGRATE_ON_STARTUP
the lifespan first runs the same migrate as `manage.py migrate`, under the migration lock, so
any number of workers or replicas may start at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from project import api, health, migrate_database
from project.conf import Settings, load_settings
from project.db import engine_from_settings, session_factory
from project.errors import describe, mask_url

# uvicorn's own logger: under uvicorn and runserver these lines come out in its format.
log = logging.getLogger("uvicorn.error")


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


def migrate_on_startup(settings: Settings) -> None:
    """`manage.py migrate` in-process: wait for the lock, apply what is still pending, log it."""
    log.info("Migrating %s (MIGRATE_ON_STARTUP)...", mask_url(settings.DATABASE_URL))

    def on_done(step: object, elapsed: float) -> None:
        log.info("  Applied %s (%.3fs)", step, elapsed)

    started = time.perf_counter()
    try:
        plan = migrate_database(settings, on_done=on_done)
    except Exception as exc:
        # One readable line before uvicorn reports the failed start-up.
        log.error("Start-up migrations failed: %s", describe(exc, settings)[0])
        raise
    if plan.steps:
        log.info("Applied %d migration(s) in %.2fs; now at %s.", len(plan.steps),
                 time.perf_counter() - started, plan.target)
    else:
        log.info("No migrations to apply; database at %s.", plan.current or "zero")
