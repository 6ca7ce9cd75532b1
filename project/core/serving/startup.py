"""Start-up migrations (MIGRATE_ON_STARTUP) for an application's lifespan.

The same sequence as `manage.py migrate` (project.core.runner.migrator.migrate): lock, plan, destructive-step
policy, run. Any number of workers or replicas may call it at once; the first migrates, the others wait
and find nothing left to do. A refusal or failure is logged as one line and raised, so the worker does
not start serving a schema it could not bring to head.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from project.core.conf import Settings

# uvicorn's own logger: under uvicorn and runserver these lines come out in its format.
log = logging.getLogger("uvicorn.error")


def migrate_on_startup(settings: Settings) -> Any:
    """`manage.py migrate` in-process: wait for the lock, apply what is still pending, log it."""
    from project.core.db import migration_url
    from project.core.errors import MigrationError, describe, mask_url
    from project.core.runner import migrator

    log.info("Migrating %s (MIGRATE_ON_STARTUP)...", mask_url(migration_url(settings)))

    def on_done(step: object, elapsed: float) -> None:
        log.info("  Applied %s (%.3fs)", step, elapsed)

    started = time.perf_counter()
    try:
        # Every head: the same as "head" for one line of history, and all branches of an expand/contract one.
        plan = migrator.migrate(settings, "heads", on_done=on_done)
    except MigrationError as exc:
        # A refusal or a failure we can word: one line, and not the server's traceback of it after.
        log.error("Start-up migrations failed: %s", exc)
        log.addFilter(_DropTracebackOf(exc))
        raise
    except Exception as exc:
        log.error("Start-up migrations failed: %s", describe(exc, settings)[0])
        raise
    if plan.steps:
        log.info("Applied %d migration(s) in %.2fs; now at %s.", len(plan.steps),
                 time.perf_counter() - started, plan.target)
    else:
        log.info("No migrations to apply; database at %s.", plan.current or "zero")
    return plan


class _DropTracebackOf(logging.Filter):
    """Drops the one record in which the server repeats `exc` as a traceback (Starlette hands uvicorn the
    formatted traceback of a failed lifespan); every other record passes."""

    def __init__(self, exc: BaseException):
        super().__init__()
        self.marker = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        self.spent = False

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.spent and "Traceback (most recent call last)" in record.getMessage() \
                and self.marker in record.getMessage():
            self.spent = True
            return False
        return True
