"""The migration lock: one `migrate` at a time per database, whoever starts it.

Alembic has no lock of its own (alembic #633), so several workers or replicas migrating at
start-up would race. Each engine gets a lock that dies with its holder, so a process killed
while migrating never blocks the next one:

- PostgreSQL: a session-level `pg_advisory_lock` (per database), released when the session ends. A session
  whose client is gone ends only when it next reads or writes its socket: a migrate killed inside a long
  statement would keep the lock (and the revision's table locks) until that statement finished. So the
  migration session checks its client every CLIENT_CHECK_MS while a statement runs
  (client_connection_check_interval, PostgreSQL 14+), and ends within about that long of its migrate's death.
- MySQL/MariaDB: `GET_LOCK(name, timeout)`, named after the database (the names are server-wide),
  released when the session ends.
- SQLite: `flock` on a `<database>.migrate-lock` file beside the database, released by the kernel
  when the process dies. An in-memory database belongs to one connection and needs no lock.
- A MariaDB Galera cluster (wsrep_on=ON): GET_LOCK is local to the node, so two migrators on two
  nodes would both get it. The lock is a row in a small table instead, written through the cluster:
  certification lets exactly one writer win, and a lease the holder renews (heartbeat) lets the next
  one take over from a holder that died or lost its node.
- MIGRATE_LOCK=lease: that lease row (project.core.runner.lease) on any PostgreSQL or MySQL/MariaDB server, for
  engines whose session locks exclude nobody (CockroachDB's pg_advisory_lock). SQLite keeps its flock.

Every wait is bounded: after `timeout` seconds the caller gets `LockTimeout`, not a hang.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from project.core import bookkeeping
from project.core.errors import MigrationError
from project.core.runner.lease import LeaseLock, lease_supported, sqlstate
from project.core.runner.topology import galera

# One constant key: advisory locks are already scoped to the current PostgreSQL database.
PG_LOCK_KEY = zlib.crc32(b"fastapi-manage:migrate")
MYSQL_NAME_LIMIT = 64
SQLITE_LOCK_SUFFIX = ".migrate-lock"
SQLITE_POLL_SECONDS = 0.05
CLIENT_CHECK_MS = 1000  # PostgreSQL's client_connection_check_interval on the migration session
GALERA_LOCK_TABLE = bookkeeping.GALERA_LOCK_TABLE  # the lease lock's table (project.core.runner.lease)
# MIGRATE_LOCK: "auto" picks the engine's own lock (the lease row on Galera); "lease" the lease row on any
# server engine. SQLite keeps its flock either way: one file on one host, where flock is exact.
LOCK_KINDS = ("auto", "lease")


class LockTimeout(Exception):
    """Another process held the migration lock for longer than we were willing to wait."""


class LockLost(LockTimeout):
    """The server went away (died, failed over, ended the session) while this migrate waited for the lock: it had
    applied nothing, and the holder's session is gone with the server too."""


class LockChoiceError(LockTimeout, MigrationError):
    """MIGRATE_LOCK names no lock this tool has: worded in one line wherever a LockTimeout or a MigrationError is
    (migrate, and the read-only `migrate --plan`/`--check`, which take no lock)."""


DEFAULT_LOCK_TIMEOUT = 300.0
DEFAULT_LOCK_LEASE = 60.0  # the lease lock's row: how long a silent holder keeps it (see runner.lease)


@contextmanager
def locked_connection(settings: Any, timeout: float | None = None,
                      before_lock: Callable[[Connection], None] | None = None) -> Iterator[Connection]:
    """A migration connection holding the database's migration lock (migration_lock).

    Whoever waits reads the current revision only after the holder has finished, so the
    second of two concurrent migrates finds nothing left to do. The connection comes with no
    transaction open. The lock dies with the session or process, so a killed migrate never
    blocks the next one; waiting longer than `timeout` (default: MIGRATE_LOCK_TIMEOUT) raises
    MigrationError.
    """
    from project.core import db
    from project.core.errors import mask_url
    from project.core.runner.topology import UnfitTarget, check_migration_target

    if timeout is None:
        timeout = float(settings.get("MIGRATE_LOCK_TIMEOUT", DEFAULT_LOCK_TIMEOUT))
    url = db.migration_url(settings)
    where = mask_url(url)
    try:
        with db.settings_connection(settings, url) as connection:
            try:
                # A standby, a read-only server or a transaction pooler is refused before anything is written.
                check_migration_target(connection, where, direct_url=settings.get("MIGRATION_DATABASE_URL"),
                                       env_name=f"{settings.name.upper()}_MIGRATION_DATABASE_URL")
                if before_lock is not None:  # a refusal that must come before the lock writes anything (lease row)
                    before_lock(connection)
                with migration_lock(connection, timeout, where=where,
                                    lease=float(settings.get("MIGRATE_LOCK_LEASE", DEFAULT_LOCK_LEASE)),
                                    kind=str(settings.get("MIGRATE_LOCK", "auto"))):
                    yield connection
            except (LockTimeout, UnfitTarget) as exc:
                raise MigrationError(str(exc)) from None
    except DBAPIError as exc:
        if settings.get("MIGRATION_DATABASE_URL"):
            # errors.describe names the server and the setting that failed, not the application's.
            exc.database_url, exc.database_setting = url, "MIGRATION_DATABASE_URL"  # type: ignore[attr-defined]
        raise


@contextmanager
def migration_lock(connection: Connection, timeout: float, where: str = "the database",
                   lease: float = 60.0, kind: str = "auto") -> Iterator[None]:
    """Hold the migration lock for the block. The connection is handed back with no transaction open.

    `where` names the database in the timeout message (pass a masked URL). `lease`: for the lease lock (Galera,
    or `kind` "lease"), how long the lock row stays taken after its holder stops renewing it (died, lost its
    node). `kind`: MIGRATE_LOCK, one of LOCK_KINDS.
    """
    dialect = connection.dialect.name
    if use_lease(connection, kind):
        lock: Any = LeaseLock(connection, lease, galera=galera(connection))
    elif dialect == "postgresql":
        lock = _PostgresLock(connection)
    elif dialect in {"mysql", "mariadb"}:
        lock = _MySQLLock(connection)
    elif dialect == "sqlite":
        lock = _SQLiteLock(connection)
    else:  # pragma: no cover - the project supports the three engines above
        raise LockTimeout(f"No migration lock for the {dialect} dialect.")
    if not _acquire(connection, lock, timeout, where):
        raise LockTimeout(
            f"another migrate is running on {where}; waited {timeout:g} s for its lock "
            "(MIGRATE_LOCK_TIMEOUT). Try again when it has finished."
        )
    try:
        yield
    finally:
        lock.release()


def _acquire(connection: Connection, lock: Any, timeout: float, where: str) -> bool:
    try:
        if connection.dialect.name == "postgresql":
            _watch_client(connection)
        return bool(lock.acquire(timeout))
    except DBAPIError as exc:
        from project.core.errors import cause_of
        from project.core.runner.interrupted import connection_lost

        if not connection_lost(connection, exc):
            raise
        raise LockLost(
            f"Lost the connection to the database server while waiting for the migration lock on {where}: "
            f"{cause_of(exc).rstrip('.')}. This migrate had applied nothing; re-run migrate once the server (or the "
            "standby taking over from it) answers.") from None


def use_lease(connection: Connection, kind: str = "auto") -> bool:
    """Whether the migration lock on `connection` is the lease row: on Galera, or when MIGRATE_LOCK is "lease"
    on a server engine. Raises LockChoiceError for a value of MIGRATE_LOCK that names no lock."""
    if kind not in LOCK_KINDS:
        raise LockChoiceError(f"MIGRATE_LOCK is {kind!r}: use 'auto' (the engine's own lock) or 'lease' (a lock "
                              "row under a lease, for servers whose advisory locks exclude nobody).")
    if kind == "lease" and lease_supported(connection):
        return True
    return galera(connection)


def migration_running(connection: Connection, kind: str = "auto") -> bool:
    """Whether some session holds the migration lock right now; never waits, takes nothing.

    For read-only callers (`migrate --plan`, `--check`), which answer at once and say so.
    """
    dialect = connection.dialect.name
    try:
        if use_lease(connection, kind):
            return LeaseLock(connection, 0).held()
        if dialect == "postgresql":
            # pg_advisory_lock(bigint) files the key's high half as classid, the low half as objid.
            return bool(connection.execute(text(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND classid::bigint = 0 AND objid::bigint = :key AND objsubid = 1 "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))"
            ), {"key": PG_LOCK_KEY}).scalar())
        if dialect in {"mysql", "mariadb"}:
            name = _MySQLLock(connection).name
            return connection.execute(text("SELECT IS_USED_LOCK(:name)"), {"name": name}).scalar() is not None
        if dialect == "sqlite":
            return _SQLiteLock(connection).held_elsewhere()
        return False
    finally:
        _end_transaction(connection)


def _watch_client(connection: Connection) -> None:
    """PostgreSQL 14+: the session checks while a statement runs that its client is still there (module
    docstring); for the session, as the lock is, whichever lock it takes."""
    if (connection.dialect.server_version_info or (0,)) < (14,):
        return
    _end_transaction(connection)
    connection.exec_driver_sql(f"SET client_connection_check_interval = {CLIENT_CHECK_MS}")
    connection.commit()


def _end_transaction(connection: Connection) -> None:
    # SQLAlchemy 2 autobegins: leave the connection clean for the caller (and for the unlock
    # statement after a failed migration, which PostgreSQL would refuse in an aborted transaction).
    if connection.in_transaction():
        connection.rollback()


class _PostgresLock:
    def __init__(self, connection: Connection):
        self.connection = connection

    def acquire(self, timeout: float) -> bool:
        conn = self.connection
        _end_transaction(conn)
        try:
            # lock_timeout bounds the wait; SET LOCAL ends with this transaction, the lock does not.
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = {max(1, int(timeout * 1000))}")
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": PG_LOCK_KEY})
        except DBAPIError as exc:
            conn.rollback()
            if sqlstate(exc) == "55P03":  # lock_not_available
                return False
            raise
        conn.commit()
        return True

    def release(self) -> None:
        _release(self.connection, text("SELECT pg_advisory_unlock(:key)"), {"key": PG_LOCK_KEY})


class _MySQLLock:
    def __init__(self, connection: Connection):
        self.connection = connection
        self.name = mysql_lock_name(connection.exec_driver_sql("SELECT DATABASE()").scalar() or "")

    def acquire(self, timeout: float) -> bool:
        conn = self.connection
        _end_transaction(conn)
        got = conn.execute(
            text("SELECT GET_LOCK(:name, :timeout)"), {"name": self.name, "timeout": math.ceil(max(timeout, 0))}
        ).scalar()
        conn.commit()
        if got is None:  # NULL: an error such as the session being killed
            raise LockTimeout(f"GET_LOCK('{self.name}') failed on the server.")
        return bool(got)

    def release(self) -> None:
        _release(self.connection, text("SELECT RELEASE_LOCK(:name)"), {"name": self.name})


def mysql_lock_name(database: str) -> str:
    """GET_LOCK names are server-wide: include the database, and keep within MySQL's 64 characters."""
    name = f"migrate:{database}"
    if len(name) > MYSQL_NAME_LIMIT:
        name = "migrate:" + hashlib.sha1(database.encode()).hexdigest()
    return name


def _release(connection: Connection, statement: Any, params: dict[str, Any]) -> None:
    if connection.invalidated:
        return  # its session is gone (server lost, interrupted mid-statement), and the lock with it
    try:
        _end_transaction(connection)
        connection.execute(statement, params)
        connection.commit()
    except DBAPIError:
        # The session is gone (server restart, killed connection): so is its lock.
        pass


class _SQLiteLock:
    def __init__(self, connection: Connection):
        database = connection.engine.url.database or ""
        memory = database in {"", ":memory:"} or "mode=memory" in database
        self.path = None if memory else sqlite_lock_path(database)
        self.fd: int | None = None

    def acquire(self, timeout: float) -> bool:
        if self.path is None:
            return True
        import fcntl

        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except PermissionError:
            # A read-only directory: lock the database file itself (SQLite uses fcntl locks, not flock).
            self.fd = os.open(self.path[: -len(SQLITE_LOCK_SUFFIX)], os.O_RDONLY)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(self.fd)
                    self.fd = None
                    return False
                time.sleep(SQLITE_POLL_SECONDS)

    def held_elsewhere(self) -> bool:
        if self.path is None or not os.path.exists(self.path):
            return False
        import fcntl

        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # drops the flock if we took it

    def release(self) -> None:
        # Closing the descriptor drops the flock. The file stays: deleting it would let a waiter
        # lock an unlinked inode while a newcomer locks a fresh file.
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def sqlite_lock_path(database: str) -> str:
    if database.startswith("file:"):
        database = database[len("file:"):].split("?", 1)[0]
    return os.path.abspath(database) + SQLITE_LOCK_SUFFIX
