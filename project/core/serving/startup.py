"""Start-up migrations (MIGRATE_ON_STARTUP) for an application's lifespan.

The same sequence as `manage.py migrate` (project.core.runner.migrator.migrate): lock, plan, destructive-step
policy, run. Any number of workers or replicas may call it at once; the first migrates, the others wait
and find nothing left to do. A refusal or failure is logged as one line and raised, so the worker does
not start serving a schema it could not bring to head.

A database that is away (down, restarting, failing over, not accepting connections yet, or a standby not yet
promoted) is waited for, up to MIGRATE_ON_STARTUP_WAIT seconds, one log line per retry: under a process manager
that stops every worker when one fails to start (uvicorn --workers), failing at once would stop the whole server
for an outage of seconds. Each retry is the whole migrate again, under the migration lock, reading what is
applied afresh, so nothing is applied twice. A revision whose DDL stays when its server dies (MySQL/MariaDB, or
an autocommit_block) is never retried blind: that failure, like any other, ends the start-up at once.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any, NoReturn

from project.core.conf import Settings

# uvicorn's own logger: under uvicorn and runserver these lines come out in its format.
log = logging.getLogger("uvicorn.error")

DEFAULT_WAIT = 60.0  # seconds: MIGRATE_ON_STARTUP_WAIT when the settings do not say
FIRST_DELAY = 0.5  # seconds before the first retry, doubled after each one up to MAX_DELAY
MAX_DELAY = 3.0


def migrate_on_startup(settings: Settings) -> Any:
    """`manage.py migrate` in-process: wait for the lock, apply what is still pending, log it; wait for a database
    that is away (MIGRATE_ON_STARTUP_WAIT)."""
    from project.core.db import migration_url
    from project.core.errors import mask_url

    where = mask_url(migration_url(settings))
    log.info("Migrating %s (MIGRATE_ON_STARTUP)...", where)
    started = time.perf_counter()
    plan = _migrate_waiting(settings, where)
    if plan.steps:
        log.info("Applied %d migration(s) in %.2fs; now at %s.", len(plan.steps),
                 time.perf_counter() - started, plan.target)
    else:
        log.info("No migrations to apply; database at %s.", plan.current or "zero")
    return plan


def _migrate_waiting(settings: Settings, where: str) -> Any:
    """migrator.migrate, run again while the database is away, up to MIGRATE_ON_STARTUP_WAIT seconds."""
    bound = float(settings.get("MIGRATE_ON_STARTUP_WAIT", DEFAULT_WAIT))
    outage: float | None = None  # when the database was first found away: the wait is bounded from there
    delay = FIRST_DELAY
    with _StopSignals() as stop:
        while True:
            attempt = _Attempt()
            try:
                return attempt.run(settings)
            except Exception as exc:
                awaited = _awaited(exc, attempt, settings) if bound > 0 else None
                if awaited is None:
                    _fail(exc, settings)
                now = time.perf_counter()
                outage = now if outage is None else outage
                if now - outage >= bound:
                    _give_up(exc, settings, f"waited {bound:g}s (MIGRATE_ON_STARTUP_WAIT) for {awaited} at {where}, "
                                            "in vain")
                # Heard from before the line: a stop asked for on reading it must end the wait, not uvicorn's
                # handler alone (which would leave the start-up waiting out the bound).
                stop.listen()
                log.warning("Start-up migrations wait for %s at %s: %.0fs so far (MIGRATE_ON_STARTUP_WAIT=%gs).",
                            awaited, where, now - outage, bound)
                if stop.wait(min(delay, bound - (now - outage))):
                    _give_up(exc, settings, f"stopped ({stop.signal_name}) while waiting for {awaited} at {where}")
                delay = min(2 * delay, MAX_DELAY)  # quick retries for a restart of seconds, then every MAX_DELAY


class _Attempt:
    """One run of the migrate sequence, and where it was when it stopped: the migration connection and the
    revision in progress (None between revisions)."""

    def __init__(self) -> None:
        self.connection: Any = None
        self.step: Any = None

    def run(self, settings: Settings) -> Any:
        from project.core.runner import migrator

        # Every head: the same as "head" for one line of history, and all branches of an expand/contract one.
        return migrator.migrate(settings, "heads", on_plan=self._planned, on_start=self._started,
                                on_done=self._done, on_held=self._held)

    def _planned(self, _plan: object, connection: Any) -> None:
        self.connection = connection

    def _started(self, step: object, _elapsed: float) -> None:
        self.step = step

    def _done(self, step: object, elapsed: float) -> None:
        self.step = None
        log.info("  Applied %s (%.3fs)", step, elapsed)

    @staticmethod
    def _held(held: Any) -> None:
        # The same facts as `manage.py migrate`'s "Waiting:" line (runner.fleet): this worker serves without them.
        log.info("  Contract revision %s waits (with %s) for older instances to stop: %s.", held.step,
                 ", ".join(step.revision for step in held.steps), held.describe())

    def kept_partly(self) -> bool:
        """A revision was in progress whose statements stay when its session ends (runner.interrupted)."""
        from project.core.runner import interrupted

        return self.step is not None and interrupted.partial_because(self.connection, self.step) is not None


def _awaited(exc: BaseException, attempt: _Attempt, settings: Settings) -> str | None:
    """What a retry would wait for when `exc` says the database is away, not wrong; None: fail now."""
    from sqlalchemy import make_url
    from sqlalchemy.exc import DBAPIError

    from project.core.db import migration_url
    from project.core.errors import DatabaseFailure, MigrationError, classify
    from project.core.runner.locks import LockLost
    from project.core.runner.topology import UnfitTarget

    if attempt.kept_partly():
        return None  # what ran of it is in the database: the operator decides (`manage.py repair`)
    if isinstance(exc, LockLost) or isinstance(exc.__context__, LockLost):  # the runner words it as a
        # MigrationError; lost while another worker held the lock: nothing of this attempt ran
        return "the database server to come back (connection lost)"
    # The driver's error as raised, or under the one line the runner words a lost server with.
    failure = exc if isinstance(exc, DBAPIError) else exc.__cause__
    if isinstance(failure, DBAPIError):
        url = getattr(failure, "database_url", None) or migration_url(settings)
        kind = classify(failure, url)
        if kind is DatabaseFailure.UNREACHABLE:
            return "the database server to accept connections"
        if kind is DatabaseFailure.DISCONNECTED:
            return "the database server to come back (connection lost)"
        if kind is DatabaseFailure.READ_ONLY and make_url(url).get_backend_name() != "sqlite":
            return "a writable primary (the server is read-only)"  # a read-only SQLite file stays so
        return None
    if isinstance(exc, MigrationError) and isinstance(exc.__context__, UnfitTarget) and _standby(settings):
        return "the standby to be promoted (it is in recovery)"
    return None


def _standby(settings: Settings) -> bool:
    """Whether the migration URL reaches a PostgreSQL standby: one a failover may be promoting right now."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from project.core import db

    @db.sync_entry
    def in_recovery() -> bool:
        with db.settings_connection(settings, db.migration_url(settings)) as connection:
            if connection.dialect.name != "postgresql":
                return False
            return bool(connection.execute(text("SELECT pg_is_in_recovery()")).scalar())

    try:
        return in_recovery()
    except DBAPIError:
        return False


def _fail(exc: BaseException, settings: Settings) -> NoReturn:
    """As `manage.py migrate` fails: one line, then the exception again for the server to stop this worker."""
    from project.core.errors import MigrationError, describe

    if isinstance(exc, MigrationError):
        # A refusal or a failure we can word: one line, and not the server's traceback of it after.
        log.error("Start-up migrations failed: %s", exc)
        log.addFilter(_DropTracebackOf(exc))
        raise exc
    log.error("Start-up migrations failed: %s", describe(exc, settings)[0])
    raise exc


def _give_up(exc: BaseException, settings: Settings, why: str) -> NoReturn:
    """The wait is over without a database: one line, why, and the last failure."""
    from project.core.errors import MigrationError, describe

    cause = str(exc) if isinstance(exc, MigrationError) else describe(exc, settings)[0]
    error = MigrationError(f"{why}: {cause}")
    log.error("Start-up migrations failed: %s", error)
    log.addFilter(_DropTracebackOf(error))
    raise error from exc


class _StopSignals:
    """Notices SIGINT and SIGTERM while a start-up migration waits for its database, so that a server told to stop
    does not wait out MIGRATE_ON_STARTUP_WAIT first: the server's own handlers (uvicorn's) still run, then the wait
    ends. Signal handlers belong to the main thread, where the server's event loop runs; the migration runs in one of
    its worker threads (anyio's), which asks the loop to install and restore them. Called from anywhere else, the
    waits are plain sleeps."""

    def __init__(self) -> None:
        self.stopped = threading.Event()
        self.signal_name = ""
        self.installed = False
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> _StopSignals:
        return self

    def __exit__(self, *_: object) -> None:
        if self.previous:
            self._in_main_thread(self._restore)

    def listen(self) -> None:
        """Install the handlers (once): before the first wait, so a start-up that never waits leaves the server's
        alone."""
        if not self.installed:
            self.installed = True
            self._in_main_thread(self._install)

    def wait(self, seconds: float) -> bool:
        """Sleep `seconds`; True at once if the server was told to stop (since listen())."""
        return self.stopped.wait(max(seconds, 0.0))

    def _in_main_thread(self, fn: Any) -> None:
        from anyio import from_thread

        try:
            from_thread.run_sync(fn)
        except RuntimeError:  # not in an anyio worker thread (no server loop to ask)
            pass

    def _install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            handler = signal.getsignal(sig)
            if callable(handler):
                self.previous[sig] = handler
                signal.signal(sig, self._caught)

    def _caught(self, signum: int, frame: Any) -> None:
        self.signal_name = signal.Signals(signum).name
        self.stopped.set()
        self.previous[signum](signum, frame)

    def _restore(self) -> None:
        for sig, handler in self.previous.items():
            if signal.getsignal(sig) == self._caught:  # unless someone has replaced ours since
                signal.signal(sig, handler)


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
