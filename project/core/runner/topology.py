"""What the migration connection really reaches, checked before the migration lock is taken.

The lock (project/core/runner/locks.py) and the writes after it only mean something on a server that takes
writes and keeps session state. Two production set-ups break that without an error of their own:

- a hot standby or read-only replica: every write fails, and the failure would blame the revision;
- a transaction-mode pooler (PgBouncer `pool_mode = transaction`): each transaction may run on another
  server connection, so a session advisory lock is left behind on a connection the pooler hands to
  someone else, and two migrators both "hold" it.

Both are refused in one line that says what to point where, before anything is written. A Galera
cluster is recognised too (wsrep_on): its DDL must replicate in total order (wsrep_OSU_method=TOI),
and its lock is a lock row (lease.LeaseLock), since GET_LOCK holds on one node only.

pgpool-II (streaming-replication mode) is neither: it keeps a session on its server connections, but with
load balancing on it sends the reads of a session to a node it picks, a standby that may not have replayed
the writes just committed on the primary (Alembic then misses `alembic_version`, or the lock's reads lie).
It answers `SHOW pool_version` itself, which PostgreSQL and PgBouncer do not; the migration connection is
then pinned to the primary, every statement of it, or refused (`_pin_to_primary`).
"""

from __future__ import annotations

import re
import secrets
import weakref
from typing import Any

from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.exc import DBAPIError

from project.core.db import TOOL_APPLICATION_NAME

# A custom (placeholder) setting any PostgreSQL user may set for its session.
PROBE_SETTING = "fastapi_manage.pool_probe"
# Each round: set a token in one transaction, read it back in the next while a second client
# connection holds a transaction open. A direct connection never fails a round; a transaction pooler
# fails as soon as one round lands on another server connection, which LIFO reuse makes the first.
PROBE_ROUNDS = 3
POINT_AT_PRIMARY = "point MIGRATION_DATABASE_URL/DATABASE_URL at the primary"
# What every statement of a migration through pgpool-II starts with. pgpool never caches (memory_cache_enabled)
# a statement that starts with /*NO QUERY CACHE*/, so none is ever answered from its cache; and it load-balances
# only a statement that starts as a read SELECT does ('s', 'w', 't', '(' after white space), unless
# allow_sql_comments=on: with its default (off) any leading comment sends the statement to the primary.
# /*NO LOAD BALANCE*/ is the comment pgpool's docs use for that.
PGPOOL_HINTS = "/*NO QUERY CACHE*/ /*NO LOAD BALANCE*/ "
UNDEFINED_OBJECT = "42704"  # SQLSTATE of `SHOW pool_version` on PostgreSQL: unrecognized parameter


class UnfitTarget(Exception):
    """The migration connection reaches a server (or pooler) that migrations must not run on."""


def check_migration_target(connection: Connection, where: str, *, direct_url: str | None, env_name: str) -> None:
    """Raise UnfitTarget when `connection` reaches a standby, a read-only server or a transaction pooler.

    `where` names it (a masked URL); `direct_url` is MIGRATION_DATABASE_URL (None: DATABASE_URL is used);
    `env_name` is the environment variable that sets it, for the message.
    """
    dialect = connection.dialect.name
    try:
        if dialect == "postgresql":
            _check_postgres(connection, where, direct_url, env_name)
        elif dialect in {"mysql", "mariadb"}:
            _check_mysql(connection, where)
    finally:
        if connection.in_transaction():
            connection.rollback()


def _check_postgres(connection: Connection, where: str, direct_url: str | None, env_name: str) -> None:
    # First: through pgpool-II even the standby check below could be answered by a standby.
    pgpool = pgpool_settings(connection)
    if pgpool is not None:
        _pin_to_primary(connection, pgpool, where, direct_url, env_name)
    in_recovery, read_only, backend_pid = connection.execute(text(
        "SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only') = 'on', pg_backend_pid()"
    )).one()
    connection.rollback()
    if in_recovery:
        raise UnfitTarget(f"{where} is a read-only standby (in recovery): {POINT_AT_PRIMARY}.")
    if read_only:
        raise UnfitTarget(f"{where} only allows read-only transactions (default_transaction_read_only=on): "
                          f"{POINT_AT_PRIMARY}, or turn it off for this user and database.")
    if backend_pid == key_data_pid(connection) or not transaction_pooled(connection):
        return
    if direct_url:
        raise UnfitTarget(f"MIGRATION_DATABASE_URL ({where}) goes through a transaction-mode pooler such as "
                          "PgBouncer, where the migration lock cannot hold: point it at the PostgreSQL server "
                          "itself. Nothing was changed.")
    raise UnfitTarget(f"{where} goes through a transaction-mode pooler such as PgBouncer, where the migration "
                      f"lock cannot hold: set {env_name} (MIGRATION_DATABASE_URL) to a direct connection to the "
                      "PostgreSQL server; the application keeps DATABASE_URL. Nothing was changed.")


def pgpool_settings(connection: Connection) -> dict[str, str] | None:
    """pgpool-II's settings (`SHOW pool_status`: name -> value) when `connection` goes through pgpool-II,
    else None. pgpool answers SHOW pool_* itself; PostgreSQL, and PgBouncer passing it on, fail with
    "unrecognized configuration parameter" (one ERROR line in the server's log).

    asyncpg prepares every statement, and pgpool (4.3) passes a prepared SHOW pool_* on to the server: it is
    asked in the simple query protocol, which returns no rows, so through pgpool the answer is {}.
    """
    if connection.dialect.driver == "asyncpg":
        return _pgpool_by_simple_query(connection)
    try:
        connection.exec_driver_sql("SHOW pool_version").all()
    except DBAPIError as exc:
        connection.rollback()
        if (getattr(exc.orig, "pgcode", None) or getattr(exc.orig, "sqlstate", None)) == UNDEFINED_OBJECT:
            return None
        raise
    rows = connection.exec_driver_sql("SHOW pool_status").all()
    connection.rollback()
    return {str(row[0]): str(row[1]) for row in rows}


def _pgpool_by_simple_query(connection: Connection) -> dict[str, str] | None:
    from sqlalchemy.util import concurrency

    await_ = getattr(concurrency, "await_", None) or concurrency.await_only  # SQLAlchemy 2.1 renamed it
    connection.rollback()  # outside any transaction: an error here must not abort one
    try:
        await_(connection.connection.driver_connection.execute("SHOW pool_version"))  # type: ignore[union-attr]
    except Exception as exc:  # asyncpg's own exception: nothing of SQLAlchemy's is involved
        if getattr(exc, "sqlstate", None) == UNDEFINED_OBJECT:
            return None
        raise
    return {}


def _on(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "on", "true", "yes"}


def _pin_to_primary(connection: Connection, pgpool: dict[str, str], where: str, direct_url: str | None,
                    env_name: str) -> None:
    """Make every statement of `connection` (and of its engine's other connections) run on the primary
    behind pgpool-II, or raise UnfitTarget. Not "most of the time": each way below is decided by pgpool's
    settings, never by which node it happened to pick for this session.

    Every statement goes out behind PGPOOL_HINTS (never from the query cache), and then:
    - load_balance_mode=off: pgpool sends everything to the primary already;
    - allow_sql_comments=off (the default): the leading comment keeps every statement off the standbys;
    - otherwise app_name_redirect_preference_list must send this session's application_name (the tool's
      connections say db.TOOL_APPLICATION_NAME) to the primary with weight 1.
    """
    target = ("point MIGRATION_DATABASE_URL at the primary itself" if direct_url
              else f"set {env_name} (MIGRATION_DATABASE_URL) to a direct connection to the primary")
    if not pgpool:
        raise UnfitTarget(f"{where} goes through pgpool-II, whose settings asyncpg cannot read (pgpool answers "
                          "SHOW pool_status to unprepared statements only), so the migration cannot make sure its "
                          f"reads stay on the primary: use postgresql+psycopg:// for it, or {target}. "
                          "Nothing was changed.")
    pin_statements(connection.engine)
    if not _on(pgpool.get("load_balance_mode")) or not _on(pgpool.get("allow_sql_comments")):
        return
    app_name = str(connection.execute(text("SELECT current_setting('application_name')")).scalar() or "")
    nodes = connection.exec_driver_sql("SHOW pool_nodes").mappings().all()
    connection.rollback()
    primary = {str(row.get("node_id")) for row in nodes if row.get("role") == "primary"}
    session_node = {str(row.get("node_id")) for row in nodes if row.get("load_balance_node") == "true"}
    redirected = _redirect_target(pgpool.get("app_name_redirect_preference_list", ""), app_name)
    if redirected is not None and (redirected == "primary" or redirected in primary) and session_node <= primary:
        return
    name = app_name or TOOL_APPLICATION_NAME
    fix = (f"add '{name}:primary' to app_name_redirect_preference_list (the migration connects with "
           f"application_name={name}), or set allow_sql_comments=off")
    raise UnfitTarget(f"{where} goes through pgpool-II with load balancing, which may send the migration's reads "
                      f"to a standby that has not replayed its writes: in pgpool.conf {fix}; or {target}. "
                      "Nothing was changed.")


def _redirect_target(preference_list: str, app_name: str) -> str | None:
    """The node (primary, standby or a node id) that app_name_redirect_preference_list sends `app_name` to
    with weight 1, or None. pgpool takes the first entry whose regular expression matches the whole name."""
    for entry in preference_list.split(","):
        pattern, _, node = entry.strip().rpartition(":")
        if not pattern:
            continue
        try:
            matches = re.fullmatch(pattern.strip("^$"), app_name) is not None
        except re.error:
            return None  # pgpool's regex dialect, not Python's: do not guess
        if not matches:
            continue
        found = re.fullmatch(r"\s*(\w+)\s*(?:\(\s*([0-9.]+)\s*\))?\s*", node)
        if found is None or (found.group(2) is not None and float(found.group(2)) < 1.0):
            return None
        return found.group(1).lower()
    return None


def pin_statements(engine: Engine) -> None:
    """Every statement `engine`'s connections send from now on starts with PGPOOL_HINTS.

    Added at the driver call (the dialect's do_execute events), so the tool's own views of what ran
    (after_cursor_execute, SQL_ECHO) keep the statements as written.
    """
    dialect = engine.dialect

    def do_execute(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        dialect.do_execute(cursor, PGPOOL_HINTS + statement, parameters, context)
        return True

    def do_executemany(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        dialect.do_executemany(cursor, PGPOOL_HINTS + statement, parameters, context)
        return True

    def do_execute_no_params(cursor: Any, statement: str, context: Any) -> bool:
        dialect.do_execute_no_params(cursor, PGPOOL_HINTS + statement, context)
        return True

    if engine in _pinned:
        return
    event.listen(engine, "do_execute", do_execute)
    event.listen(engine, "do_executemany", do_executemany)
    event.listen(engine, "do_execute_no_params", do_execute_no_params)
    _pinned.add(engine)


_pinned: weakref.WeakSet[Engine] = weakref.WeakSet()


def key_data_pid(connection: Connection) -> int | None:
    """The backend process id the server's BackendKeyData message gave the driver when `connection` was opened
    (None: a driver that does not tell).

    Equal to pg_backend_pid(): the session is the backend's own, so the pooler probe (transaction_pooled: a
    second connection, three rounds) is not needed. A transaction-mode pooler never passes a backend's key on,
    since the client has no backend of its own to cancel (PgBouncer, Odyssey, PgCat make up a random key),
    so behind one the two differ and the probe runs. pgpool-II (a session pooler, which may pass its main node's
    key on) is recognised before this, by pgpool_settings."""
    raw = connection.connection.driver_connection
    driver = connection.dialect.driver
    try:
        if driver == "psycopg2":
            return int(raw.get_backend_pid())  # type: ignore[union-attr]
        if driver in {"psycopg", "psycopg_async"}:
            return int(raw.info.backend_pid)  # type: ignore[union-attr]
        if driver == "asyncpg":
            return int(raw.get_server_pid())  # type: ignore[union-attr]
    except (AttributeError, TypeError, ValueError):
        pass  # another version of the driver: probe
    return None


def transaction_pooled(connection: Connection) -> bool:
    """Whether session state fails to survive between two transactions of `connection`.

    On a direct connection (or a session-mode pool) the backend and its settings stay with the
    client connection for its whole life, and no other client connection ever sees them.
    """
    probe = text(f"SELECT pg_backend_pid(), current_setting('{PROBE_SETTING}', true)")
    with connection.engine.connect() as other:
        for _ in range(PROBE_ROUNDS):
            token = secrets.token_hex(8)
            pid = connection.execute(text(f"SELECT pg_backend_pid(), set_config('{PROBE_SETTING}', :token, false)"),
                                     {"token": token}).one()[0]
            connection.commit()
            # `other` now holds a transaction open: a pooler has to give it a server connection of its own,
            # most likely the one just released, and our next transaction another one.
            other_pid, other_token = other.execute(probe).one()
            again_pid, again_token = connection.execute(probe).one()
            connection.rollback()
            other.rollback()
            if other_pid == pid or other_token == token or again_pid != pid or again_token != token:
                return True
    return False


def _check_mysql(connection: Connection, where: str) -> None:
    variables = _variables(connection, "read_only", "super_read_only", "innodb_read_only", "wsrep_on",
                           "wsrep_osu_method")
    _wsrep_on[connection] = variables.get("wsrep_on") == "ON"
    on = [name for name in ("read_only", "super_read_only", "innodb_read_only") if variables.get(name) == "ON"]
    if on:
        raise UnfitTarget(f"{where} is a read-only standby ({', '.join(f'{n}=ON' for n in on)}): {POINT_AT_PRIMARY}.")
    if variables.get("wsrep_on") == "ON" and variables.get("wsrep_osu_method", "TOI").upper() != "TOI":
        raise UnfitTarget(
            f"{where} is a Galera node with wsrep_OSU_method={variables['wsrep_osu_method']}: DDL would change "
            "this node only. Migrate with wsrep_OSU_method=TOI (SET GLOBAL wsrep_OSU_method='TOI')."
        )


def galera(connection: Connection) -> bool:
    """Whether `connection` reaches a Galera cluster node with replication on (wsrep_on=ON)."""
    if connection.dialect.name not in {"mysql", "mariadb"}:
        return False
    if connection not in _wsrep_on:
        _wsrep_on[connection] = _variables(connection, "wsrep_on").get("wsrep_on") == "ON"
    return _wsrep_on[connection]


# wsrep_on as check_migration_target read it on a connection, for the lock's choice right after (one SHOW fewer).
# Keyed by the Connection object: a connection checked out again later reads it anew.
_wsrep_on: weakref.WeakKeyDictionary[Connection, bool] = weakref.WeakKeyDictionary()


def _variables(connection: Connection, *names: str) -> dict[str, Any]:
    """The session values of the named server variables (lower-case names); absent ones are left out."""
    marks = ", ".join(f":n{i}" for i in range(len(names)))
    rows = connection.execute(text(f"SHOW VARIABLES WHERE Variable_name IN ({marks})"),
                              {f"n{i}": name for i, name in enumerate(names)}).all()
    return {str(name).lower(): str(value).upper() for name, value in rows}
