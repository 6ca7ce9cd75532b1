"""Production topologies for the tests that need them: a streaming standby, PgBouncer and pgpool-II in
front of the test PostgreSQL, and a 3-node MariaDB Galera cluster.

Session fixtures, started on first use: only the topology tests pay for them. conftest.py imports them.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator

import dbservers  # conftest.py puts scripts/ on sys.path
import pytest
import sqlalchemy as sa

REPLAY_DEADLINE = 60.0  # seconds: only guards against a hang, never asserted on


@pytest.fixture(scope="session")
def pg_standby(pg_server: dbservers.Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dbservers.Server]:
    """A hot standby streaming from pg_server: every database created on pg_server appears on it."""
    server = dbservers.start_postgres_standby(pg_server, tmp_path_factory.mktemp("standby"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pgbouncer(pg_server: dbservers.Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dbservers.Pooler]:
    """PgBouncer in transaction pooling mode in front of pg_server."""
    pooler = dbservers.start_pgbouncer(pg_server, tmp_path_factory.mktemp("pgbouncer"))
    yield pooler
    pooler.stop()


@pytest.fixture(scope="session")
def pgpool(pg_server: dbservers.Server, pg_standby: dbservers.Server,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[dbservers.Pgpool]:
    """pgpool-II in streaming-replication mode with load_balance_mode=on in front of pg_server (the primary,
    node 0) and pg_standby (node 1), each weighted 1; otherwise pgpool's defaults (allow_sql_comments=off,
    statement-level balancing off). Its log names the node of every statement (log_per_node_statement).

    pgpool logs in to every node when a client connects: a database created on pg_server is usable through
    it once the standby has replayed it (`wait_for_standby`)."""
    pool = dbservers.start_pgpool(pg_server, [pg_standby], tmp_path_factory.mktemp("pgpool"))
    yield pool
    pool.stop()


def wait_for_standby(standby: dbservers.Server, database: str) -> None:
    """Wait until `standby` has replayed CREATE DATABASE `database`."""
    wait_for(lambda: can_connect(standby.url(database)), f"the standby replaying CREATE DATABASE {database}")


@pytest.fixture(scope="session")
def galera_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[dbservers.Server]]:
    """Three MariaDB Galera nodes, each taking writes; a database created on one appears on all."""
    cluster = dbservers.start_galera_cluster(tmp_path_factory.mktemp("galera"))
    yield cluster
    dbservers.stop_cluster(cluster)


@pytest.fixture
def pg_database(pg_server: dbservers.Server) -> Iterator[str]:
    """The name of a fresh, empty database on pg_server (dropped afterwards)."""
    yield from _fresh_database(pg_server)


def _fresh_database(server: dbservers.Server) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    server.create_database(name)
    yield name
    try:
        server.drop_database(name)
    except Exception as error:  # cleanup must not mask the test result
        print(f"warning: could not drop test database {name}: {error}", file=sys.stderr)


def wait_for(check, what: str, deadline: float = REPLAY_DEADLINE):
    """Poll `check()` until it returns a true value (returned) or raises nothing; fail after `deadline` s."""
    end = time.monotonic() + deadline
    while True:
        try:
            result = check()
            if result:
                return result
        except sa.exc.DBAPIError:
            pass
        if time.monotonic() > end:
            raise AssertionError(f"{what} did not happen within {deadline:.0f}s")
        time.sleep(0.1)


def can_connect(url: str) -> bool:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect():
            return True
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def patroni_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dbservers.PatroniCluster]:
    """etcd, two Patroni nodes (asynchronous streaming replication) and HAProxy in front, on loopback: the tests
    that kill the primary. Its tests share one xdist group ("patroni_cluster", marked in their module): under
    pytest-xdist one worker starts it."""
    cluster = dbservers.start_patroni_cluster(tmp_path_factory.mktemp("patroni"))
    yield cluster
    cluster.stop()
