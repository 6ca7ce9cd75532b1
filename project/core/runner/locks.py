"""The migration lock: one `migrate` at a time per database, whoever starts it.

Alembic has no lock of its own (alembic #633), so several workers or replicas migrating at
start-up would race. Each engine gets a lock that dies with its holder, so a process killed
while migrating never blocks the next one:

- PostgreSQL: a session-level `pg_advisory_lock` (per database), released when the session ends.
- MySQL/MariaDB: `GET_LOCK(name, timeout)`, named after the database (the names are server-wide),
  released when the session ends.
- SQLite: `flock` on a `<database>.migrate-lock` file beside the database, released by the kernel
  when the process dies. An in-memory database belongs to one connection and needs no lock.
- A MariaDB Galera cluster (wsrep_on=ON): GET_LOCK is local to the node, so two migrators on two
  nodes would both get it. The lock is a row in a small table instead, written through the cluster:
  certification lets exactly one writer win, and a lease the holder renews (heartbeat) lets the next
  one take over from a holder that died or lost its node.

Every wait is bounded: after `timeout` seconds the caller gets `LockTimeout`, not a hang.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import secrets
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from project.core import bookkeeping
from project.core.runner.topology import galera

# One constant key: advisory locks are already scoped to the current PostgreSQL database.
PG_LOCK_KEY = zlib.crc32(b"fastapi-manage:migrate")
MYSQL_NAME_LIMIT = 64
SQLITE_LOCK_SUFFIX = ".migrate-lock"
SQLITE_POLL_SECONDS = 0.05
GALERA_LOCK_TABLE = bookkeeping.GALERA_LOCK_TABLE
GALERA_POLL_SECONDS = 0.2
# MySQL error numbers a Galera write may end with that mean "another node got there first, try again":
# 1213 deadlock (how a certification failure or a brute-force abort is reported), 1205 lock wait timeout.
GALERA_RETRY_ERRORS = {1213, 1205}
DUPLICATE_KEY = 1062  # the lock row exists: held, unless its lease ran out

log = logging.getLogger(__name__)


class LockTimeout(Exception):
    """Another process held the migration lock for longer than we were willing to wait."""


@contextmanager
def migration_lock(connection: Connection, timeout: float, where: str = "the database",
                   lease: float = 60.0) -> Iterator[None]:
    """Hold the migration lock for the block. The connection is handed back with no transaction open.

    `where` names the database in the timeout message (pass a masked URL). `lease`: on Galera, how long
    the lock row stays taken after its holder stops renewing it (died, lost its node).
    """
    dialect = connection.dialect.name
    if dialect == "postgresql":
        lock: Any = _PostgresLock(connection)
    elif galera(connection):
        lock = _GaleraLock(connection, lease)
    elif dialect in {"mysql", "mariadb"}:
        lock = _MySQLLock(connection)
    elif dialect == "sqlite":
        lock = _SQLiteLock(connection)
    else:  # pragma: no cover - the project supports the three engines above
        raise LockTimeout(f"No migration lock for the {dialect} dialect.")
    if not lock.acquire(timeout):
        raise LockTimeout(
            f"another migrate is running on {where}; waited {timeout:g} s for its lock "
            "(MIGRATE_LOCK_TIMEOUT). Try again when it has finished."
        )
    try:
        yield
    finally:
        lock.release()


def migration_running(connection: Connection) -> bool:
    """Whether some session holds the migration lock right now; never waits, takes nothing.

    For read-only callers (`migrate --plan`, `--check`), which answer at once and say so.
    """
    dialect = connection.dialect.name
    try:
        if dialect == "postgresql":
            # pg_advisory_lock(bigint) files the key's high half as classid, the low half as objid.
            return bool(connection.execute(text(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND classid::bigint = 0 AND objid::bigint = :key AND objsubid = 1 "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))"
            ), {"key": PG_LOCK_KEY}).scalar())
        if galera(connection):
            return _GaleraLock(connection, 0).held()
        if dialect in {"mysql", "mariadb"}:
            name = _MySQLLock(connection).name
            return connection.execute(text("SELECT IS_USED_LOCK(:name)"), {"name": name}).scalar() is not None
        if dialect == "sqlite":
            return _SQLiteLock(connection).held_elsewhere()
        return False
    finally:
        _end_transaction(connection)


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
            if _sqlstate(exc) == "55P03":  # lock_not_available
                return False
            raise
        conn.commit()
        return True

    def release(self) -> None:
        _release(self.connection, text("SELECT pg_advisory_unlock(:key)"), {"key": PG_LOCK_KEY})


def _sqlstate(exc: DBAPIError) -> str | None:
    orig = exc.orig
    return getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)


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


class _GaleraLock:
    """A lock row in GALERA_LOCK_TABLE, taken by a committed INSERT and held under a renewed lease.

    Galera has no cluster-wide pessimistic lock: GET_LOCK and SELECT ... FOR UPDATE lock one node, and
    a write conflict between nodes shows only at commit, when certification lets the first writer in
    the total order win and fails the others with a deadlock error (1213). So: INSERT the row and
    commit; if it commits, we hold the lock everywhere. A duplicate key means it is held; a 1213 means
    another node won the race: both are "wait and try again", never an error for the caller. A row
    whose lease ran out (holder killed, node gone) is taken over by an UPDATE that certification
    again lets only one waiter win. The holder renews the lease from a heartbeat thread on a
    connection of its own. The lease is read on the database's clock (UTC_TIMESTAMP), so the nodes'
    clocks must agree (NTP) to well within it. A DDL statement that stalls the cluster's commits
    (Total Order Isolation) longer than the lease also stalls the heartbeat: keep the lease above the
    longest one (MIGRATE_LOCK_LEASE).
    """

    name = "migrate"

    def __init__(self, connection: Connection, lease: float):
        self.connection = connection
        self.lease = max(1, math.ceil(lease))
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"[:255]
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def acquire(self, timeout: float) -> bool:
        conn = self.connection
        _galera_rollback(conn)
        # Reads on this session wait until the node has applied everything the cluster committed before
        # them: the revision read after taking the lock is the one the previous holder left.
        conn.exec_driver_sql("SET SESSION wsrep_sync_wait = 1")
        self._create_table()
        deadline = time.monotonic() + timeout
        while not self._take():
            if time.monotonic() >= deadline:
                return False
            time.sleep(GALERA_POLL_SECONDS)
        self._stop.clear()
        self._heartbeat = threading.Thread(target=self._renew, name="migrate-lock-heartbeat", daemon=True)
        self._heartbeat.start()
        return True

    def _create_table(self) -> None:
        conn = self.connection
        exists = conn.execute(text("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() "
                                   "AND table_name = :name"), {"name": GALERA_LOCK_TABLE}).scalar()
        _galera_rollback(conn)
        if not exists:
            # DDL runs under Total Order Isolation: every node creates it once, whoever asks first. Only
            # when missing: each such statement aborts the transactions that use the table on every node.
            conn.exec_driver_sql(
                f"CREATE TABLE IF NOT EXISTS {GALERA_LOCK_TABLE} (name VARCHAR(64) NOT NULL PRIMARY KEY, "
                "holder VARCHAR(255) NOT NULL, expires_at DATETIME(6) NOT NULL) ENGINE=InnoDB"
            )

    def _take(self) -> bool:
        params = {"name": self.name, "holder": self.holder, "lease": self.lease}
        insert = text(f"INSERT INTO {GALERA_LOCK_TABLE} (name, holder, expires_at) "
                      "VALUES (:name, :holder, UTC_TIMESTAMP(6) + INTERVAL :lease SECOND)")
        take_over = text(f"UPDATE {GALERA_LOCK_TABLE} SET holder = :holder, "
                         "expires_at = UTC_TIMESTAMP(6) + INTERVAL :lease SECOND "
                         "WHERE name = :name AND expires_at < UTC_TIMESTAMP(6)")
        for statement in (insert, take_over):
            try:
                taken = self.connection.execute(statement, params).rowcount == 1
                self.connection.commit()  # certification happens here
                if taken:
                    return True
            except DBAPIError as exc:
                _galera_rollback(self.connection)
                if _mysql_errno(exc) not in GALERA_RETRY_ERRORS | {DUPLICATE_KEY}:
                    raise
                if _mysql_errno(exc) != DUPLICATE_KEY:
                    return False  # another node won this round
        return False

    def _renew(self) -> None:
        renew = text(f"UPDATE {GALERA_LOCK_TABLE} SET expires_at = UTC_TIMESTAMP(6) + INTERVAL :lease SECOND "
                     "WHERE name = :name AND holder = :holder")
        params = {"name": self.name, "holder": self.holder, "lease": self.lease}
        try:
            with self.connection.engine.connect() as conn:
                try:
                    while not self._stop.wait(self.lease / 4):
                        try:
                            if conn.execute(renew, params).rowcount == 0:
                                log.warning("The migration lock's lease ran out and another migrator took it over.")
                            conn.commit()
                        except DBAPIError as exc:
                            _galera_rollback(conn)
                            log.warning("Could not renew the migration lock's lease: %s", exc.orig)
                finally:
                    # Closed, not handed back to the pool: its reset-on-return would roll back over a connection
                    # whose node may have died since the last renewal, and log that failure as a traceback.
                    conn.invalidate()
        except DBAPIError as exc:  # no connection at all: the lease runs out, the next migrator takes over
            log.warning("Could not renew the migration lock's lease: %s", exc.orig)

    def release(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
            self._heartbeat = None
        delete = text(f"DELETE FROM {GALERA_LOCK_TABLE} WHERE name = :name AND holder = :holder")
        for _ in range(10):
            try:
                _galera_rollback(self.connection)
                self.connection.execute(delete, {"name": self.name, "holder": self.holder})
                self.connection.commit()
                return
            except DBAPIError as exc:
                if _mysql_errno(exc) not in GALERA_RETRY_ERRORS:
                    return  # the node is gone: the lease runs out instead
                _galera_rollback(self.connection)
                time.sleep(GALERA_POLL_SECONDS)

    def held(self) -> bool:
        try:
            return bool(self.connection.execute(
                text(f"SELECT COUNT(*) FROM {GALERA_LOCK_TABLE} WHERE name = :name AND expires_at >= UTC_TIMESTAMP(6)"),
                {"name": self.name},
            ).scalar())
        except DBAPIError as exc:
            _galera_rollback(self.connection)
            if _mysql_errno(exc) == 1146:  # no such table: nobody ever migrated through the cluster lock
                return False
            raise


def _galera_rollback(connection: Connection) -> None:
    """Roll back, where Galera may answer even ROLLBACK with 1213: a replicated write set (or DDL) won
    over this transaction and aborted it (a brute-force abort). The transaction is gone either way."""
    try:
        connection.rollback()
    except DBAPIError as exc:
        if _mysql_errno(exc) not in GALERA_RETRY_ERRORS:
            raise
        if connection.in_transaction():
            connection.rollback()


def _mysql_errno(exc: DBAPIError) -> int | None:
    args = getattr(exc.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


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
