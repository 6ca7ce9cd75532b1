"""Lock and statement timeouts for the migration connection, and the retry of a revision whose lock
was not granted in time.

A DDL statement waiting for a lock queues every later query on that table behind it: without a lock
timeout, one long transaction of the running application turns a one-millisecond ALTER into an outage.
So `migrate` bounds the wait, per statement of every revision it runs:

- PostgreSQL: `lock_timeout` (every lock a statement waits for) and, when set, `statement_timeout`.
- MySQL/MariaDB: `lock_wait_timeout` (metadata locks: what DDL waits for) and `innodb_lock_wait_timeout`
  (row locks: what a data migration waits for), whole seconds. Statement timeout: MariaDB's
  `max_statement_time` covers every statement; MySQL's `max_execution_time` covers SELECTs only, so
  on MySQL DDL and writes are not bounded.
- SQLite: the busy timeout (the wait for another connection's write lock); it has no statement timeout.

The settings (seconds): MIGRATE_DDL_LOCK_TIMEOUT (default 5; 0 = wait forever), MIGRATE_STATEMENT_TIMEOUT
(default none), MIGRATE_LOCK_RETRIES (default 3) and MIGRATE_LOCK_RETRY_DELAY (default 2, doubled per
retry). MIGRATE_LOCK_TIMEOUT is another thing: the wait for the tool's own migration lock
(project.core.runner.locks), which these session settings are applied after and reset before releasing.

A revision whose lock was not granted is retried only when nothing of it is left behind: on PostgreSQL
and SQLite its transaction rolled back, unless the revision commits on its own (an autocommit_block);
on MySQL/MariaDB (no transactional DDL), or in a revision that commits, only when none of its schema
statements had run yet.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from project.core.bookkeeping import is_schema_statement
from project.core.runner.invalid_indexes import advice

DEFAULT_DDL_LOCK_TIMEOUT = 5.0
DEFAULT_LOCK_RETRIES = 3
DEFAULT_LOCK_RETRY_DELAY = 2.0
MAX_RETRY_DELAY = 60.0

PG_LOCK_NOT_AVAILABLE = "55P03"
PG_QUERY_CANCELED = "57014"
MYSQL_LOCK_WAIT_TIMEOUT = 1205
MYSQL_STATEMENT_TIMEOUTS = {1969, 3024}  # MariaDB max_statement_time, MySQL max_execution_time
SQLITE_BUSY = 5


@dataclass(frozen=True)
class Timeouts:
    lock: float | None  # seconds; None: wait as long as the server's own setting says
    statement: float | None
    retries: int
    delay: float

    @classmethod
    def from_settings(cls, settings: Any) -> Timeouts:
        lock = settings.get("MIGRATE_DDL_LOCK_TIMEOUT", DEFAULT_DDL_LOCK_TIMEOUT)
        statement = settings.get("MIGRATE_STATEMENT_TIMEOUT", None)
        return cls(
            lock=float(lock) if lock else None,
            statement=float(statement) if statement else None,
            retries=max(0, int(settings.get("MIGRATE_LOCK_RETRIES", DEFAULT_LOCK_RETRIES))),
            delay=max(0.0, float(settings.get("MIGRATE_LOCK_RETRY_DELAY", DEFAULT_LOCK_RETRY_DELAY))),
        )

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (1, 2, ...): doubling, capped."""
        return float(min(self.delay * 2 ** (attempt - 1), MAX_RETRY_DELAY))


@contextmanager
def session_timeouts(connection: Connection, timeouts: Timeouts) -> Iterator[None]:
    """The timeouts set on the migration session for the block, then back to the server's defaults.

    Session-level (not SET LOCAL): they hold for every revision's transaction, and for autocommit blocks.
    The connection must have no transaction open (it is handed back the same way).
    """
    dialect = connection.dialect.name
    # SQLite has no server default to go back to: the connection's own busy timeout is restored.
    busy = connection.exec_driver_sql("PRAGMA busy_timeout").scalar() if dialect == "sqlite" else None
    _run(connection, _set_statements(dialect, timeouts, connection))
    if dialect == "sqlite":
        # Each revision takes the write lock when it begins, so a busy database is waited for (the busy
        # timeout): a transaction that read first would be refused at once, since SQLite never upgrades a
        # read lock while another connection writes (see project.core.db.APP_SQLITE_BEGIN).
        begin = connection.get_execution_options().get("sqlite_begin")
        connection.execution_options(sqlite_begin="BEGIN IMMEDIATE")
    try:
        yield
    finally:
        if connection.in_transaction():
            connection.rollback()  # an aborted PostgreSQL transaction refuses RESET
        if dialect == "sqlite":
            connection.execution_options(sqlite_begin=begin or "BEGIN")
        _run(connection, [f"PRAGMA busy_timeout = {busy}"] if dialect == "sqlite" else
             _reset_statements(dialect, connection))


# One statement per engine sets them all, and one sets them back: two round trips per migrate, whatever the
# number of revisions (SET takes one parameter on PostgreSQL; set_config, SET's function form, takes any number
# in one SELECT; MySQL's SET takes a list).
_PG_SETTINGS = ("lock_timeout", "statement_timeout")


def _set_statements(dialect: str, t: Timeouts, connection: Connection) -> list[str]:
    if dialect == "postgresql":
        values = {"lock_timeout": _ms(t.lock), "statement_timeout": _ms(t.statement)}  # milliseconds
        return ["SELECT " + ", ".join(f"set_config('{name}', '{values[name]}', false)" for name in _PG_SETTINGS)]
    if dialect in {"mysql", "mariadb"}:
        assignments = []
        if t.lock:
            seconds = max(1, math.ceil(t.lock))  # whole seconds, at least 1
            assignments += [f"lock_wait_timeout = {seconds}", f"innodb_lock_wait_timeout = {seconds}"]
        if _is_mariadb(connection):
            assignments.append(f"max_statement_time = {t.statement or 0:g}")
        else:
            assignments.append(f"max_execution_time = {_ms(t.statement)}")
        return ["SET SESSION " + ", ".join(assignments)]
    if dialect == "sqlite":
        from project.core.db import SQLITE_BUSY_TIMEOUT_MS

        return [f"PRAGMA busy_timeout = {_ms(t.lock) or SQLITE_BUSY_TIMEOUT_MS}"]
    return []


def _reset_statements(dialect: str, connection: Connection) -> list[str]:
    if dialect == "postgresql":
        # reset_val: what RESET would set (the role's, database's or server's default).
        names = ", ".join(f"'{name}'" for name in _PG_SETTINGS)
        return [f"SELECT set_config(name, reset_val, false) FROM pg_settings WHERE name IN ({names})"]
    if dialect in {"mysql", "mariadb"}:
        variable = "max_statement_time" if _is_mariadb(connection) else "max_execution_time"
        return ["SET SESSION " + ", ".join(f"{name} = DEFAULT" for name in ("lock_wait_timeout",
                                                                              "innodb_lock_wait_timeout", variable))]
    return []


def _ms(seconds: float | None) -> int:
    return max(1, int(seconds * 1000)) if seconds else 0  # 0: no limit, on every engine


def _is_mariadb(connection: Connection) -> bool:
    return bool(getattr(connection.dialect, "is_mariadb", False))


def _run(connection: Connection, statements: list[str]) -> None:
    if connection.invalidated:
        return  # its session is gone (server lost, interrupted mid-statement): a reset would reconnect
    for statement in statements:
        connection.exec_driver_sql(statement)
    if connection.in_transaction():
        connection.commit()  # a SET inside a transaction that rolled back would not stick


# --- what failed -----------------------------------------------------------------------------------


def _codes(exc: BaseException) -> tuple[str | None, int | None, int | None]:
    """(PostgreSQL SQLSTATE, MySQL error number, SQLite primary result code) of a DBAPIError."""
    from project.core.errors import _mysql_errno

    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    sqlstate = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
    errno = _mysql_errno(orig)
    sqlite_code = getattr(orig, "sqlite_errorcode", None)
    return (sqlstate if isinstance(sqlstate, str) and errno is None else None, errno,
            sqlite_code & 0xFF if isinstance(sqlite_code, int) else None)


def is_lock_timeout(exc: BaseException) -> bool:
    """A statement gave up waiting for a lock (lock_timeout, lock_wait_timeout, SQLite's busy timeout)."""
    if not isinstance(exc, DBAPIError):
        return False
    sqlstate, errno, sqlite_code = _codes(exc)
    if sqlite_code is not None:
        return sqlite_code == SQLITE_BUSY
    if "database is locked" in str(exc.orig) and errno is None and sqlstate is None:
        return True  # SQLite drivers without result codes (aiosqlite before 3.11's attributes)
    return sqlstate == PG_LOCK_NOT_AVAILABLE or errno == MYSQL_LOCK_WAIT_TIMEOUT


def is_statement_timeout(exc: BaseException) -> bool:
    if not isinstance(exc, DBAPIError):
        return False
    sqlstate, errno, _ = _codes(exc)
    if sqlstate == PG_QUERY_CANCELED:
        return "statement timeout" in str(exc.orig)
    return errno in MYSQL_STATEMENT_TIMEOUTS


def commits_on_its_own(script: Any) -> bool:
    """The revision commits part of itself (an autocommit_block, e.g. for CREATE INDEX CONCURRENTLY):
    what ran before a failure may be kept even on PostgreSQL."""
    try:
        with open(script.path, encoding="utf-8") as file:
            source = file.read()
    except OSError:
        return True  # cannot tell: assume the worst
    return "autocommit_block" in source


def retryable(connection: Connection, script: Any, ran: list[str]) -> bool:
    """Whether the revision left nothing behind, so that running it again is safe. `ran`: the schema
    statements of it that completed before the failure."""
    if not ran:
        return True
    transactional = connection.dialect.name in {"postgresql", "sqlite"}
    return transactional and not commits_on_its_own(script)


# --- who holds the lock ------------------------------------------------------------------------------

# The table a DDL or DML statement works on (the first one named; quoted or not, maybe schema-qualified).
_TABLE = re.compile(
    r"""\b(?:ALTER\s+TABLE(?:\s+ONLY)?(?:\s+IF\s+EXISTS)?|DROP\s+TABLE(?:\s+IF\s+EXISTS)?|TRUNCATE(?:\s+TABLE)?|
        INSERT\s+INTO|UPDATE|DELETE\s+FROM|LOCK\s+TABLES?|RENAME\s+TABLE|REFERENCES|
        CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?\S+\s+ON(?:\s+ONLY)?)
        \s+((?:[`"]?\w+[`"]?\.)?[`"]?\w+[`"]?)""",
    re.IGNORECASE | re.VERBOSE,
)


def tables_in(statement: str | None) -> list[str]:
    """Table names a statement locks, in order, unquoted and without schema."""
    found: list[str] = []
    for match in _TABLE.finditer(statement or ""):
        name = match.group(1).split(".")[-1].strip('`"')
        if name not in found:
            found.append(name)
    return found


def blockers(connection: Connection, tables: list[str]) -> list[str]:
    """Other sessions holding a lock on `tables`, each described on a few words; [] where the engine
    cannot tell. Run right after the timeout, while the blocker most likely still holds its lock."""
    if connection.in_transaction():
        connection.rollback()
    dialect = connection.dialect.name
    try:
        if dialect == "postgresql":
            return _pg_blockers(connection, tables)
        if dialect in {"mysql", "mariadb"}:
            return _mysql_blockers(connection, tables)
    except DBAPIError:
        return []  # no rights on the catalogue views: say less, never fail the report
    finally:
        if connection.in_transaction():
            connection.rollback()
    return []


def _pg_blockers(connection: Connection, tables: list[str]) -> list[str]:
    rows = connection.execute(text(
        "SELECT DISTINCT a.pid, a.usename, a.application_name, a.client_addr::text, a.state, "
        "       round(extract(epoch FROM now() - coalesce(a.xact_start, a.query_start)))::int AS age, a.query "
        "FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
        "JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.granted AND l.pid <> pg_backend_pid() AND l.database = "
        "      (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "  AND c.relname = ANY(:tables) ORDER BY a.pid"
    ), {"tables": tables}).all()
    return [_session(f"pid {pid}", user, app, client, state, age, query)
            for pid, user, app, client, state, age, query in rows]


def _mysql_blockers(connection: Connection, tables: list[str]) -> list[str]:
    """MariaDB's metadata_lock_info plugin, else MySQL's performance_schema.metadata_locks, names the
    holder of a table's metadata lock; without either, the sessions with an open InnoDB transaction
    are the suspects (an idle transaction that read the table holds its metadata lock)."""
    schema = connection.exec_driver_sql("SELECT DATABASE()").scalar()
    params = {"schema": schema, "tables": tables}
    processlist = ("SELECT p.ID, p.USER, p.HOST, p.COMMAND, p.TIME, p.INFO "
                   "FROM information_schema.PROCESSLIST p WHERE p.ID <> CONNECTION_ID() AND p.ID IN ({}) "
                   "ORDER BY p.ID")
    if _has_table(connection, "information_schema", "METADATA_LOCK_INFO"):
        holders = ("SELECT m.THREAD_ID FROM information_schema.METADATA_LOCK_INFO m "
                   "WHERE m.TABLE_SCHEMA = :schema AND m.TABLE_NAME IN :tables")
    elif connection.exec_driver_sql("SELECT @@performance_schema").scalar() and \
            _has_table(connection, "performance_schema", "metadata_locks"):  # MariaDB has it empty when off
        holders = ("SELECT t.PROCESSLIST_ID FROM performance_schema.metadata_locks m "
                   "JOIN performance_schema.threads t ON t.THREAD_ID = m.OWNER_THREAD_ID "
                   "WHERE m.OBJECT_SCHEMA = :schema AND m.OBJECT_NAME IN :tables AND m.LOCK_STATUS = 'GRANTED'")
    else:
        holders = "SELECT trx_mysql_thread_id FROM information_schema.INNODB_TRX"
        params = {}
    statement = text(processlist.format(holders))
    if params:
        from sqlalchemy import bindparam

        statement = statement.bindparams(bindparam("tables", expanding=True))
    rows = connection.execute(statement, params).all()
    return [_session(f"id {id_}", user, None, host, command, age, info) for id_, user, host, command, age, info in rows]


def _has_table(connection: Connection, schema: str, table: str) -> bool:
    return bool(connection.execute(text(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = :s AND TABLE_NAME = :t"
    ), {"s": schema, "t": table}).scalar())


def _session(ident: str, user: Any, app: Any, client: Any, state: Any, age: Any, query: Any) -> str:
    parts = [f"user {user}"] if user else []
    if app:
        parts.append(f"application {app!r}")
    if client:
        parts.append(f"from {client}")
    if state:
        parts.append(f"{state}" + (f" for {age} s" if age is not None else ""))
    if query:
        last = " ".join(str(query).split())
        parts.append(f"last query: {last[:80]}{'...' if len(last) > 80 else ''}")
    return f"{ident} ({', '.join(parts)})"


# --- the retry loop --------------------------------------------------------------------------------

RetryCallback = Callable[[Any, int, float], None]  # (step, retry number, seconds before it)


def run_retrying(connection: Connection, timeouts: Timeouts, run: Callable[[], None], pending: list[Any],
                 executed: list[str], failure: Callable[[Any, list[str], str], Any],
                 on_retry: RetryCallback | None = None) -> None:
    """`run()` (Alembic's upgrade from wherever the database is now), again after a lock timeout of the
    revision `pending[0]` while that is safe, at most `timeouts.retries` more times with doubling delays.
    Then MigrationError: `failure(step, ran, detail)` words it, `detail` naming the table and its holder.
    `executed`: statements that completed since the last revision was recorded (run_plan keeps it)."""

    attempt = 1
    while True:
        try:
            run()
            return
        except DBAPIError as exc:
            if not pending or not is_lock_timeout(exc):
                raise
            step = pending[0]
            ran = [" ".join(s.split()) for s in executed if is_schema_statement(s)]

            invalid = advice(connection, exc)  # a concurrent build that timed out mid-way
            if invalid or attempt > timeouts.retries or not retryable(connection, step.script, ran):
                tables = tables_in(exc.statement)
                holders = blockers(connection, tables)
                detail = lock_detail(exc, timeouts, attempt, tables, holders)
                raise failure(step, ran, ". ".join(filter(None, [detail, invalid]))) from exc
            if connection.in_transaction():
                connection.rollback()
            wait = timeouts.backoff(attempt)
            if on_retry is not None:
                on_retry(step, attempt, wait)
            time.sleep(wait)
            executed.clear()
            attempt += 1


def lock_detail(exc: DBAPIError, timeouts: Timeouts, attempts: int, tables: list[str], holders: list[str]) -> str:
    """'the lock on table tasks was not granted within 5 s (MIGRATE_DDL_LOCK_TIMEOUT), 4 attempts; held by
    pid 123 (user app, idle in transaction for 40 s, last query: ...)'."""
    if tables:
        what = f"the lock on table {', '.join(tables)}"
    else:  # SQLite's revision asks for the database's write lock when it begins: the whole file, no table
        what = "the database's write lock" if _codes(exc)[2] is not None else "a lock"
    waited = f"within {timeouts.lock:g} s (MIGRATE_DDL_LOCK_TIMEOUT)" if timeouts.lock else "in time"
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
    if holders:
        who = f"held by {'; '.join(holders)}"
    elif connection_can_tell(exc):
        who = "no other session holds it any more"
    else:
        who = "this engine cannot tell which session holds it"
    return f"{what} was not granted {waited}, {tries}; {who}"


def connection_can_tell(exc: DBAPIError) -> bool:
    sqlstate, errno, _ = _codes(exc)
    return sqlstate is not None or errno is not None
