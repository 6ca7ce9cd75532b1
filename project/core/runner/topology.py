"""What the migration connection really reaches, checked before the migration lock is taken.

The lock (project/core/runner/locks.py) and the writes after it only mean something on a server that takes
writes and keeps session state. Two production set-ups break that without an error of their own:

- a hot standby or read-only replica: every write fails, and the failure would blame the revision;
- a transaction-mode pooler (PgBouncer `pool_mode = transaction`): each transaction may run on another
  server connection, so a session advisory lock is left behind on a connection the pooler hands to
  someone else, and two migrators both "hold" it.

Both are refused in one line that says what to point where, before anything is written. A Galera
cluster is recognised too (wsrep_on): its DDL must replicate in total order (wsrep_OSU_method=TOI),
and its lock is a lock row (locks._GaleraLock), since GET_LOCK holds on one node only.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import Connection, text

# A custom (placeholder) setting any PostgreSQL user may set for its session.
PROBE_SETTING = "fastapi_manage.pool_probe"
# Each round: set a token in one transaction, read it back in the next while a second client
# connection holds a transaction open. A direct connection never fails a round; a transaction pooler
# fails as soon as one round lands on another server connection, which LIFO reuse makes the first.
PROBE_ROUNDS = 3
POINT_AT_PRIMARY = "point MIGRATION_DATABASE_URL/DATABASE_URL at the primary"


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
    in_recovery, read_only = connection.execute(text(
        "SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only') = 'on'"
    )).one()
    connection.rollback()
    if in_recovery:
        raise UnfitTarget(f"{where} is a read-only standby (in recovery): {POINT_AT_PRIMARY}.")
    if read_only:
        raise UnfitTarget(f"{where} only allows read-only transactions (default_transaction_read_only=on): "
                          f"{POINT_AT_PRIMARY}, or turn it off for this user and database.")
    if not transaction_pooled(connection):
        return
    if direct_url:
        raise UnfitTarget(f"MIGRATION_DATABASE_URL ({where}) goes through a transaction-mode pooler such as "
                          "PgBouncer, where the migration lock cannot hold: point it at the PostgreSQL server "
                          "itself. Nothing was changed.")
    raise UnfitTarget(f"{where} goes through a transaction-mode pooler such as PgBouncer, where the migration "
                      f"lock cannot hold: set {env_name} (MIGRATION_DATABASE_URL) to a direct connection to the "
                      "PostgreSQL server; the application keeps DATABASE_URL. Nothing was changed.")


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
    return _variables(connection, "wsrep_on").get("wsrep_on") == "ON"


def _variables(connection: Connection, *names: str) -> dict[str, Any]:
    """The session values of the named server variables (lower-case names); absent ones are left out."""
    marks = ", ".join(f":n{i}" for i in range(len(names)))
    rows = connection.execute(text(f"SHOW VARIABLES WHERE Variable_name IN ({marks})"),
                              {f"n{i}": name for i, name in enumerate(names)}).all()
    return {str(name).lower(): str(value).upper() for name, value in rows}
