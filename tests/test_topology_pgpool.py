"""pgpool-II in streaming-replication mode with load balancing on, in front of the test PostgreSQL (the primary)
and its streaming standby: `migrate` pins every statement of the migration to the primary, or refuses in one
line naming the pgpool setting, and is never taken for a transaction-mode pooler.

Issue 22: through such a pgpool a plain Alembic run read `alembic_version` from a standby that had not replayed
the previous revision (1 run in 9), and our migrate was refused as "a transaction-mode pooler" 9 runs in 20.
On the fixture application (tests/fixture_app): its prod settings, its eight revisions."""

from __future__ import annotations

import re
from pathlib import Path

import dbservers
import pytest
import sqlalchemy as sa
from conftest import fixture_env, run_manage
from servers import table_names, version_rows
from sqlalchemy.engine import make_url
from topology_fixtures import wait_for_standby

from project.core.db import TOOL_APPLICATION_NAME
from project.core.runner import topology

HEAD = "0008"
PROD = "fixture_app.settings.prod"
# migrate, then (migrate zero, migrate) this many times: 11 runs, each reading alembic_version right after
# the writes of the run before (and each revision's step after the previous one's commit). pgpool's per-node
# log is read for every statement of every run, so a 1-in-9 race per read shows many times over.
CYCLES = 5
# What may reach the standby of a pinned migration: transaction control and session settings (pgpool sends
# them to every node), pgpool's reset of a connection it caches, and what SQLAlchemy reads when it first
# connects, before the probe runs (the same on every node). Nothing that reads a table.
CONNECT_TIME_READS = {"select pg_catalog.version()", "select current_schema()", "show transaction isolation level",
                      "show standard_conforming_strings"}


def harmless_on_a_standby(statement: str) -> bool:
    words = statement.removeprefix(topology.PGPOOL_HINTS).split()
    return statement in CONNECT_TIME_READS or words[0].upper() in {"BEGIN", "COMMIT", "ROLLBACK", "ABORT", "SET",
                                                                   "RESET"} or words == ["DISCARD", "ALL"]


def version_read(statement: str) -> bool:
    """Alembic reading the recorded revision (the statement's first line: SELECT alembic_version.version_num)."""
    return statement.removeprefix(topology.PGPOOL_HINTS).startswith("SELECT alembic_version.version_num")


def reads_on_the_standby(statements: dict[int, list[str]]) -> list[str]:
    return [s for s in statements.get(1, []) if not harmless_on_a_standby(s)]


def masked(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def migrate(url: str, *args: str):
    env = fixture_env(settings_module=PROD, PROD_DATABASE_URL=url, CONFIRM_DESTRUCTIVE="0")
    return run_manage(f"--settings={PROD}", "migrate", *args, env=env)


def log_from(pool: dbservers.Pgpool, offset: int) -> dict[int, list[str]]:
    """The statements pgpool logged since `offset`, by node id (log_per_node_statement: first lines only)."""
    assert pool.log_path is not None
    text = pool.log_path.read_text(errors="replace")[offset:]
    by_node: dict[int, list[str]] = {}
    for node, statement in re.findall(r"DB node id: (\d+) backend pid: \d+ statement: (.*)", text):
        by_node.setdefault(int(node), []).append(statement.strip())
    return by_node


def log_size(pool: dbservers.Pgpool) -> int:
    assert pool.log_path is not None
    return len(pool.log_path.read_text(errors="replace"))


def test_the_fixture_balances_reads_over_both_nodes(pg_server, pg_standby, pgpool, pg_database: str) -> None:
    # What the other tests rely on: plain reads through it land on the standby in some sessions.
    wait_for_standby(pg_standby, pg_database)
    engine = sa.create_engine(pgpool.url(pg_database), poolclass=sa.pool.NullPool)
    ports = set()
    try:
        for _ in range(20):  # each session picks a node at random, weights 1:1
            with engine.connect() as connection:
                ports.add(connection.execute(sa.text("SELECT inet_server_port()")).scalar())
    finally:
        engine.dispose()
    assert ports == {pg_server.port, pg_standby.port}


def test_pgpool_is_told_apart_from_postgresql_and_pgbouncer(pg_server, pg_standby, pgpool, pg_database: str,
                                                            tmp_path: Path) -> None:
    wait_for_standby(pg_standby, pg_database)
    bouncer = dbservers.start_pgbouncer(pg_server, tmp_path)  # transaction mode
    try:
        found = {}
        for name, server in {"direct": pg_server, "pgbouncer": bouncer, "pgpool": pgpool}.items():
            engine = sa.create_engine(server.url(pg_database), poolclass=sa.pool.NullPool)
            try:
                with engine.connect() as connection:
                    found[name] = topology.pgpool_settings(connection)
            finally:
                engine.dispose()
    finally:
        bouncer.stop()
    assert found["direct"] is None and found["pgbouncer"] is None
    assert found["pgpool"] is not None
    assert found["pgpool"]["load_balance_mode"] == "1" and found["pgpool"]["allow_sql_comments"] == "0"


def test_migrate_through_pgpool_reads_only_from_the_primary(pg_server, pg_standby, pgpool, pg_database: str) -> None:
    wait_for_standby(pg_standby, pg_database)
    pooled, primary = pgpool.url(pg_database), pg_server.url(pg_database)
    start = log_size(pgpool)
    runs = [("migrate", HEAD)] + [step for _ in range(CYCLES) for step in (("zero", None), ("migrate", HEAD))]
    for number, (target, expected) in enumerate(runs, 1):
        result = migrate(pooled, *(["zero"] if target == "zero" else []))
        # Never refused as a transaction-mode pooler (or as a standby), never a stale read's failure.
        assert result.returncode == 0, f"run {number}: {result.stdout}{result.stderr}"
        assert result.stderr == "", f"run {number}"
        assert "Applied 8 migration(s)" in result.stdout if expected else "Unapplied 8 migration(s)" in result.stdout
        # Checked on the primary directly: the test's own reads stay out of pgpool's log.
        tables = table_names(primary)
        if expected:
            assert version_rows(primary) == [HEAD], f"run {number}"
            assert {"projects", "tasks"} <= tables, f"run {number}"
        else:
            assert version_rows(primary) == [], f"run {number}"
            assert not {"projects", "tasks"} & tables, f"run {number}"
    statements = log_from(pgpool, start)
    assert reads_on_the_standby(statements) == []
    # Not vacuous: the version reads, the lock and the probe did run, on the primary.
    on_primary = statements[0]
    assert sum(version_read(s) for s in on_primary) >= len(runs)
    assert sum("pg_advisory_lock" in s for s in on_primary) >= len(runs)
    assert sum(s.startswith(topology.PGPOOL_HINTS.strip()) for s in on_primary) > 100


def test_psycopg_3_through_pgpool_is_pinned_too_and_asyncpg_refused(pg_server, pg_standby, pgpool,
                                                                      pg_database: str) -> None:
    wait_for_standby(pg_standby, pg_database)
    pooled = pgpool.url(pg_database)
    psycopg = pooled.replace("postgresql+psycopg2://", "postgresql+psycopg://", 1)
    result = migrate(psycopg)
    assert result.returncode == 0, result.stdout + result.stderr
    assert version_rows(pg_server.url(pg_database)) == [HEAD]
    # asyncpg prepares every statement, and pgpool then lets SHOW pool_status through to the server: the
    # settings that decide the pinning cannot be read, so it is refused (not taken for PgBouncer).
    asyncpg = pooled.replace("postgresql+psycopg2://", "postgresql+asyncpg://", 1)
    result = migrate(asyncpg, "zero")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"CommandError: {masked(asyncpg)} goes through pgpool-II, whose settings asyncpg cannot read (pgpool answers "
        "SHOW pool_status to unprepared statements only), so the migration cannot make sure its reads stay on the "
        "primary: use postgresql+psycopg:// for it, or set PROD_MIGRATION_DATABASE_URL (MIGRATION_DATABASE_URL) to "
        "a direct connection to the primary. Nothing was changed."
    ]
    assert version_rows(pg_server.url(pg_database)) == [HEAD]


@pytest.fixture
def pgpool_with_comments(pg_server, pg_standby, tmp_path: Path, request: pytest.FixtureRequest):
    """A pgpool of its own that load-balances SELECTs led by a comment too (allow_sql_comments=on), with the
    test's app_name_redirect_preference_list (indirect parametrization; '' leaves it unset)."""
    redirect = request.param
    settings = {"allow_sql_comments": "on"}
    if redirect:
        settings["app_name_redirect_preference_list"] = f"'{redirect}'"
    pool = dbservers.start_pgpool(pg_server, [pg_standby], tmp_path, **settings)
    yield pool
    pool.stop()


@pytest.mark.parametrize("pgpool_with_comments", [f"psql:standby,{TOOL_APPLICATION_NAME}:primary"], indirect=True)
def test_with_allow_sql_comments_the_app_name_redirect_pins_migrate(
    pg_server, pg_standby, pgpool_with_comments, pg_database: str
) -> None:
    wait_for_standby(pg_standby, pg_database)
    pooled, primary = pgpool_with_comments.url(pg_database), pg_server.url(pg_database)
    start = log_size(pgpool_with_comments)
    for target in ("head", "zero", "head", "zero", "head"):
        result = migrate(pooled, target)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stderr == ""
    assert version_rows(primary) == [HEAD]
    statements = log_from(pgpool_with_comments, start)
    assert reads_on_the_standby(statements) == []
    assert sum(version_read(s) for s in statements[0]) >= 5


@pytest.mark.parametrize("pgpool_with_comments", ["", f"{TOOL_APPLICATION_NAME}:primary(0.5)"], indirect=True)
def test_with_allow_sql_comments_and_no_redirect_migrate_is_refused(
    pg_server, pg_standby, pgpool_with_comments, pg_database: str
) -> None:
    wait_for_standby(pg_standby, pg_database)
    pooled = pgpool_with_comments.url(pg_database)
    result = migrate(pooled)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        f"CommandError: {masked(pooled)} goes through pgpool-II with load balancing, which may send the migration's "
        f"reads to a standby that has not replayed its writes: in pgpool.conf add '{TOOL_APPLICATION_NAME}:primary' "
        f"to app_name_redirect_preference_list (the migration connects with application_name={TOOL_APPLICATION_NAME}), "
        "or set allow_sql_comments=off; or set PROD_MIGRATION_DATABASE_URL (MIGRATION_DATABASE_URL) to a direct "
        "connection to the primary. Nothing was changed."
    ]
    assert pgpool_with_comments.password not in result.stderr
    assert table_names(pg_server.url(pg_database)) == set()


@pytest.mark.parametrize(("preference_list", "expected"), [
    (f"{TOOL_APPLICATION_NAME}:primary", "primary"),
    ("psql:standby,fastapi-.*:primary(1.0)", "primary"),
    (f"^{TOOL_APPLICATION_NAME}$:0", "0"),
    (f"fastapi.*:standby,{TOOL_APPLICATION_NAME}:primary", "standby"),  # pgpool takes the first match
    (f"{TOOL_APPLICATION_NAME}:primary(0.5)", None),  # the other half of the sessions balance
    ("psql:primary", None),
    ("(null)", None),
    ("", None),
])
def test_the_redirect_list_is_read_as_pgpool_reads_it(preference_list: str, expected: str | None) -> None:
    assert topology._redirect_target(preference_list, TOOL_APPLICATION_NAME) == expected


VERSION_READ = "SELECT alembic_version.version_num \nFROM alembic_version"  # as Alembic's SQL compiles


def read_autocommit(url: str, statement: str) -> list[tuple]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.exec_driver_sql(statement)]
    finally:
        engine.dispose()


@pytest.fixture
def pgpool_with_query_cache(pg_server, pg_standby, tmp_path: Path):
    """A pgpool of its own that also answers repeated SELECTs from its query cache (memory_cache_enabled=on)."""
    pool = dbservers.start_pgpool(pg_server, [pg_standby], tmp_path, memory_cache_enabled="on",
                                  memqcache_method="'shmem'", memqcache_total_size="'16MB'")
    yield pool
    pool.stop()


def test_the_query_cache_never_answers_the_migration(
    pg_server, pg_standby, pgpool_with_query_cache, pg_database: str
) -> None:
    # The property, not one mechanism: this also passed with /*NO QUERY CACHE*/ taken out of PGPOOL_HINTS
    # (checked by hand, pgpool 4.3): pgpool did not fetch the version read, which comes after the lock's
    # statements, from its cache anyway. The comment keeps it so whatever runs before that read.
    wait_for_standby(pg_standby, pg_database)
    pooled, primary = pgpool_with_query_cache.url(pg_database), pg_server.url(pg_database)
    assert migrate(pooled).returncode == 0
    for _ in range(2):  # reads only: what a cache would keep
        result = migrate(pooled)
        assert "No migrations to apply" in result.stdout, result.stdout + result.stderr
    # Behind pgpool's back (it cannot invalidate what it does not see): back to zero on the primary itself,
    # after a client outside any transaction had the cache keep the version read exactly as migrate sends it.
    for prefix in (topology.PGPOOL_HINTS, "/*NO LOAD BALANCE*/ ", ""):
        cached = read_autocommit(pooled, prefix + VERSION_READ)
        assert cached == [(HEAD,)]
    assert migrate(primary, "zero").returncode == 0
    assert read_autocommit(pooled, "/*NO LOAD BALANCE*/ " + VERSION_READ) == [(HEAD,)]  # stale, from the cache
    result = migrate(pooled)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Applied 8 migration(s)" in result.stdout, result.stdout
    assert version_rows(primary) == [HEAD]
