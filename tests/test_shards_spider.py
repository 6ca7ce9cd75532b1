"""MariaDB's Spider engine (sharding over data nodes): `migrate` refuses a database with Spider tables in one
line, before anything runs, and `--plan`, `--check` and `check --database` say why.

A MariaDB server of its own with the Spider plugin loaded (INSTALL SONAME at run time; the session's shared
server stays as it is), its head and data-node databases on the same server: a Spider table forwards to a table
in another database through a CREATE SERVER link to the server itself (spider_same_server_link)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import dbservers
import pytest
import sqlalchemy as sa
from conftest import fixture_env, run_manage
from servers import table_names, version_rows

from project.core.history import applied_log

SPIDER_USER, SPIDER_PASSWORD = "spider", "spider-link"


@pytest.fixture(scope="module")
def spider_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dbservers.Server]:
    if not Path("/usr/lib/mysql/plugin/ha_spider.so").exists():
        pytest.fail("the Spider plugin is missing: run scripts/install-deps.sh (mariadb-plugin-spider)")
    server = dbservers.start_mariadb(tmp_path_factory.mktemp("spider"))
    try:
        admin(server, "mysql",
              "INSTALL SONAME 'ha_spider'",
              "SET GLOBAL spider_same_server_link = ON",  # data nodes on the head's own server, for the test
              f"CREATE USER '{SPIDER_USER}'@'127.0.0.1' IDENTIFIED BY '{SPIDER_PASSWORD}'")
        yield server
    finally:
        server.stop()


def admin(server: dbservers.Server, database: str, *statements: str) -> list[list[tuple[object, ...]]]:
    engine = sa.create_engine(server.url(database), poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            return [_run(connection, statement) for statement in statements]
    finally:
        engine.dispose()


def _run(connection: sa.Connection, statement: str) -> list[tuple[object, ...]]:
    result = connection.execute(sa.text(statement))
    return [tuple(row) for row in result] if result.returns_rows else []


@pytest.fixture
def head_and_shard(spider_server: dbservers.Server) -> Iterator[tuple[str, str]]:
    """A head database and a data-node database, and a link (CREATE SERVER) from the first to the second."""
    suffix = uuid.uuid4().hex[:10]
    head, shard, link = f"head_{suffix}", f"shard_{suffix}", f"node_{suffix}"
    url = spider_server.create_database(head)
    spider_server.create_database(shard)
    admin(spider_server, "mysql",
          f"GRANT ALL ON {shard}.* TO '{SPIDER_USER}'@'127.0.0.1'",
          f"CREATE SERVER {link} FOREIGN DATA WRAPPER mysql OPTIONS (HOST '127.0.0.1', PORT {spider_server.port}, "
          f"USER '{SPIDER_USER}', PASSWORD '{SPIDER_PASSWORD}', DATABASE '{shard}')")
    yield url, link
    admin(spider_server, "mysql", f"DROP SERVER IF EXISTS {link}")
    spider_server.drop_database(head)
    spider_server.drop_database(shard)


def manage(url: str, *args: str, **env: str):
    return run_manage(*args, env={**fixture_env(url), "NO_COLOR": "1", **env})


def log_count(url: str) -> int:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return connection.execute(sa.select(sa.func.count()).select_from(applied_log.log_table)).scalar_one()
    finally:
        engine.dispose()


def test_migrate_refuses_a_database_with_spider_tables(spider_server: dbservers.Server,
                                                       head_and_shard: tuple[str, str]) -> None:
    url, link = head_and_shard
    head, shard = sa.engine.make_url(url).database, link.replace("node_", "shard_")
    # Without a Spider table the database migrates as before.
    result = manage(url, "migrate", "0004")
    assert result.returncode == 0, result.stdout + result.stderr
    assert version_rows(url) == ["0004"]
    logged, tables = log_count(url), table_names(url)

    admin(spider_server, shard, "CREATE TABLE events (id INT PRIMARY KEY, name VARCHAR(40))")
    admin(spider_server, head,
          "CREATE TABLE events (id INT PRIMARY KEY, name VARCHAR(40)) ENGINE=SPIDER "
          f"COMMENT='wrapper \"mysql\", srv \"{link}\", table \"events\"'",
          "INSERT INTO events VALUES (1, 'through the head')")
    assert admin(spider_server, shard, "SELECT name FROM events") == [[("through the head",)]]  # a real shard

    line = ("CommandError: The database has Spider (sharded) tables (events): migrations would change only the "
            "head's definition, never the data nodes' tables, so this tool does not migrate it. Apply each revision's "
            "DDL by hand on every data node and on the head (or with Spider's own tooling), then record it with "
            "`manage.py migrate --fake`.")
    # Refused before the lock too: the lease lock (MIGRATE_LOCK=lease) would write its row and table first.
    for args, env in ((["migrate"], {}), (["migrate"], {"MIGRATE_LOCK": "lease"}), (["migrate", "--plan"], {}),
                      (["migrate", "--check"], {})):
        result = manage(url, *args, **env)
        assert result.returncode == 1, result.stdout + result.stderr
        assert result.stderr.splitlines() == [line + " Nothing was changed."], result.stderr
        assert "Traceback" not in result.stdout
    # Nothing written: the recorded revision, the applied log and the tables (no lease-lock table) are as they were.
    assert version_rows(url) == ["0004"]
    assert log_count(url) == logged
    assert table_names(url) == tables | {"events"}

    result = manage(url, "check", "--database")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Spider (sharded) tables (events)" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr

    # Gone again, the database migrates as before.
    admin(spider_server, head, "DROP TABLE events")
    result = manage(url, "migrate")
    assert result.returncode == 0, result.stdout + result.stderr
    assert version_rows(url) == ["0008"]

    # What the line advises after DDL applied by hand: `migrate --fake` records a revision without running it.
    admin(spider_server, head, "CREATE TABLE events (id INT PRIMARY KEY) ENGINE=SPIDER "
          f"COMMENT='wrapper \"mysql\", srv \"{link}\", table \"events\"'")
    result = manage(url, "migrate", "--fake", "0007")
    assert result.returncode == 0, result.stdout + result.stderr
    assert version_rows(url) == ["0007"]
