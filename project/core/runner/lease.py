"""The lease lock: a row in a small table, taken by a committed INSERT and held under a renewed lease.

For servers whose session locks cannot be trusted to exclude every other migrator: a Galera cluster (GET_LOCK
and SELECT ... FOR UPDATE lock one node; chosen automatically), and any PostgreSQL or MySQL/MariaDB server when
MIGRATE_LOCK=lease (CockroachDB's pg_advisory_lock, for one, excludes nobody). Whatever the engine, the
database's own uniqueness decides: INSERT the row and commit; if it commits, we hold the lock. A duplicate key
means it is held; a write conflict that the server reports as a retryable failure (Galera's certification
failure or brute-force abort, 1213; a lock wait timeout; PostgreSQL's serialization failure or deadlock) means
another migrator won this round: both are "wait and try again", never an error for the caller. A row whose lease
ran out (holder killed, node gone) is taken over by an UPDATE that again lets only one waiter win. The holder
renews the lease from a heartbeat thread on a connection of its own.

The lease is read on the database's clock (UTC), so on a cluster the nodes' clocks must agree (NTP) to well
within it. A statement that stalls the database's commits longer than the lease (DDL under Galera's Total Order
Isolation) also stalls the heartbeat: keep the lease above the longest one (MIGRATE_LOCK_LEASE). A killed
holder keeps the row until its lease runs out: the next migrator waits that long, where a session lock dies at
once.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from project.core import bookkeeping
from project.core.errors import _mysql_errno as mysql_errno

LEASE_LOCK_TABLE = bookkeeping.GALERA_LOCK_TABLE  # one table name on every engine: the tool's bookkeeping
POLL_SECONDS = 0.2

# What a failed statement on the lock table means, per engine. MySQL/MariaDB error numbers: 1062 duplicate key,
# 1213 deadlock (how Galera reports a certification failure or a brute-force abort), 1205 lock wait timeout,
# 1146 no such table. PostgreSQL SQLSTATEs: 23505 unique_violation, 40001 serialization_failure, 40P01
# deadlock_detected, 55P03 lock_not_available, 42P01 undefined_table, 42P07 duplicate_table, 42710 duplicate_object.
MYSQL_RETRY, MYSQL_DUPLICATE, MYSQL_NO_TABLE = {1213, 1205}, 1062, 1146
PG_RETRY, PG_DUPLICATE, PG_NO_TABLE = {"40001", "40P01", "55P03"}, "23505", "42P01"


@dataclass(frozen=True)
class _Dialect:
    """The lock table's SQL on one engine family."""

    now: str  # the database's clock, UTC, as a timestamp without time zone
    plus_lease: str  # `now` plus :lease seconds
    create: str


_MYSQL = _Dialect(
    now="UTC_TIMESTAMP(6)",
    plus_lease="UTC_TIMESTAMP(6) + INTERVAL :lease SECOND",
    create=(f"CREATE TABLE IF NOT EXISTS {LEASE_LOCK_TABLE} (name VARCHAR(64) NOT NULL PRIMARY KEY, "
            "holder VARCHAR(255) NOT NULL, expires_at DATETIME(6) NOT NULL) ENGINE=InnoDB"),
)
_POSTGRES = _Dialect(
    # clock_timestamp(), not now(): the time of the statement, not of its transaction's start.
    now="(clock_timestamp() AT TIME ZONE 'utc')",
    plus_lease="(clock_timestamp() AT TIME ZONE 'utc') + CAST(:lease AS integer) * INTERVAL '1 second'",
    create=(f"CREATE TABLE IF NOT EXISTS {LEASE_LOCK_TABLE} (name VARCHAR(64) NOT NULL PRIMARY KEY, "
            "holder VARCHAR(255) NOT NULL, expires_at TIMESTAMP(6) NOT NULL)"),
)

log = logging.getLogger(__name__)


def lease_supported(connection: Connection) -> bool:
    """Whether the lease lock has SQL for the connection's engine (PostgreSQL, MySQL/MariaDB)."""
    return connection.dialect.name in {"postgresql", "mysql", "mariadb"}


class LeaseLock:
    """A lock row in LEASE_LOCK_TABLE under a lease (see the module's docstring).

    `galera`: the connection reaches a Galera node; reads on its session then wait until the node has applied
    everything the cluster committed before them (wsrep_sync_wait), so the revision read after taking the lock
    is the one the previous holder left.
    """

    name = "migrate"

    def __init__(self, connection: Connection, lease: float, *, galera: bool = False):
        self.connection = connection
        self.lease = max(1, math.ceil(lease))
        self.galera = galera
        self.postgres = connection.dialect.name == "postgresql"
        self.sql = _POSTGRES if self.postgres else _MYSQL
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"[:255]
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def acquire(self, timeout: float) -> bool:
        conn = self.connection
        rollback(conn)
        if self.galera:
            conn.exec_driver_sql("SET SESSION wsrep_sync_wait = 1")
        self._create_table()
        deadline = time.monotonic() + timeout
        while not self._take():
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_SECONDS)
        self._stop.clear()
        self._heartbeat = threading.Thread(target=self._renew, name="migrate-lock-heartbeat", daemon=True)
        self._heartbeat.start()
        return True

    def _create_table(self) -> None:
        conn = self.connection
        schema = "current_schema()" if self.postgres else "DATABASE()"
        exists = conn.execute(text(f"SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = {schema} "
                                   "AND table_name = :name"), {"name": LEASE_LOCK_TABLE}).scalar()
        rollback(conn)
        if exists:
            return
        # Only when missing: on Galera each such statement (TOI) aborts the transactions using the table on every
        # node. On PostgreSQL two first migrators may race on the catalog: the loser's duplicate is harmless.
        try:
            conn.exec_driver_sql(self.sql.create)
            conn.commit()
        except DBAPIError as exc:
            rollback(conn)
            # The loser of that race gets 23505 (pg_type's unique index), 42P07 (the table) or 42710 ("type ...
            # already exists": the row type, seen once in tests/test_lease_lock.py's five concurrent migrates).
            if sqlstate(exc) not in {PG_DUPLICATE, "42P07", "42710"}:
                raise

    def _take(self) -> bool:
        params = {"name": self.name, "holder": self.holder, "lease": self.lease}
        insert = text(f"INSERT INTO {LEASE_LOCK_TABLE} (name, holder, expires_at) "
                      f"VALUES (:name, :holder, {self.sql.plus_lease})")
        take_over = text(f"UPDATE {LEASE_LOCK_TABLE} SET holder = :holder, expires_at = {self.sql.plus_lease} "
                         f"WHERE name = :name AND expires_at < {self.sql.now}")
        for statement in (insert, take_over):
            try:
                taken = self.connection.execute(statement, params).rowcount == 1
                self.connection.commit()  # Galera's certification happens here
                if taken:
                    return True
            except DBAPIError as exc:
                rollback(self.connection)
                if _is_duplicate(exc):
                    continue  # held: perhaps under a lease that ran out
                if _is_retryable(exc):
                    return False  # another migrator won this round
                raise
        return False

    def _renew(self) -> None:
        renew = text(f"UPDATE {LEASE_LOCK_TABLE} SET expires_at = {self.sql.plus_lease} "
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
                            rollback(conn)
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
        delete = text(f"DELETE FROM {LEASE_LOCK_TABLE} WHERE name = :name AND holder = :holder")
        for _ in range(10):
            try:
                rollback(self.connection)
                self.connection.execute(delete, {"name": self.name, "holder": self.holder})
                self.connection.commit()
                return
            except DBAPIError as exc:
                if not _is_retryable(exc):
                    return  # the server or node is gone: the lease runs out instead
                rollback(self.connection)
                time.sleep(POLL_SECONDS)

    def held(self) -> bool:
        """Whether some migrator holds the row under a lease that has not run out; never waits, takes nothing."""
        try:
            return bool(self.connection.execute(
                text(f"SELECT COUNT(*) FROM {LEASE_LOCK_TABLE} WHERE name = :name AND expires_at >= {self.sql.now}"),
                {"name": self.name},
            ).scalar())
        except DBAPIError as exc:
            rollback(self.connection)
            if _mysql_errno(exc) == MYSQL_NO_TABLE or sqlstate(exc) == PG_NO_TABLE:
                return False  # nobody ever migrated here through the lease lock
            raise


def rollback(connection: Connection) -> None:
    """Roll back, where Galera may answer even ROLLBACK with 1213: a replicated write set (or DDL) won
    over this transaction and aborted it (a brute-force abort). The transaction is gone either way."""
    try:
        connection.rollback()
    except DBAPIError as exc:
        if _mysql_errno(exc) not in MYSQL_RETRY:
            raise
        if connection.in_transaction():
            connection.rollback()


def _is_duplicate(exc: DBAPIError) -> bool:
    return _mysql_errno(exc) == MYSQL_DUPLICATE or sqlstate(exc) == PG_DUPLICATE


def _is_retryable(exc: DBAPIError) -> bool:
    return _mysql_errno(exc) in MYSQL_RETRY or sqlstate(exc) in PG_RETRY


def sqlstate(exc: DBAPIError) -> str | None:
    orig = exc.orig
    return getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)


def _mysql_errno(exc: DBAPIError) -> int | None:
    return mysql_errno(exc.orig)
