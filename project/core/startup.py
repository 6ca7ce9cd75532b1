"""Start-up migrations (MIGRATE_ON_STARTUP) for an application's lifespan.

The same sequence as `manage.py migrate` (project.core.migrator.migrate): lock, plan, destructive-step
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
    from project.core import migrator
    from project.core.errors import describe, mask_url

    log.info("Migrating %s (MIGRATE_ON_STARTUP)...", mask_url(migrator.migration_url(settings)))

    def on_done(step: object, elapsed: float) -> None:
        log.info("  Applied %s (%.3fs)", step, elapsed)

    started = time.perf_counter()
    try:
        plan = migrator.migrate(settings, on_done=on_done)
    except Exception as exc:
        log.error("Start-up migrations failed: %s", describe(exc, settings)[0])
        raise
    if plan.steps:
        log.info("Applied %d migration(s) in %.2fs; now at %s.", len(plan.steps),
                 time.perf_counter() - started, plan.target)
    else:
        log.info("No migrations to apply; database at %s.", plan.current or "zero")
    return plan
