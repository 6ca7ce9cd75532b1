"""A 3-node MariaDB Galera cluster, every node taking writes: migrators that reach different nodes at
once apply each revision exactly once, and every node ends at head with the same schema.

On the fixture application (tests/fixture_app): its test settings (TEST_DATABASE_URL), its eight revisions."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import dbservers
import pymysql
import pytest
import sqlalchemy as sa
from conftest import FIXTURE_SETTINGS, fixture_env
from servers import ROOT, uvicorn_app, version_rows, wait_until_up
from sqlalchemy.engine import make_url
from topology_fixtures import can_connect, wait_for

from project.core.runner.locks import GALERA_LOCK_TABLE

ROUNDS = 3
REVISIONS = [f"{n:04d}" for n in range(1, 9)]
HEAD = REVISIONS[-1]
TEST_SETTINGS = "fixture_app.settings.test"


@pytest.fixture
def galera_database(galera_cluster: list[dbservers.Server]) -> Iterator[list[str]]:
    """A fresh database created through the cluster: its URL on each node."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    galera_cluster[0].create_database(name)
    urls = [node.url(name) for node in galera_cluster]
    for url in urls:
        wait_for(lambda url=url: can_connect(url), "CREATE DATABASE reaching every node")
    yield urls
    galera_cluster[0].drop_database(name)


def manage(url: str, *args: str, **env: str) -> subprocess.Popen[str]:
    full_env = {**os.environ, "NO_COLOR": "1", **fixture_env(settings_module=TEST_SETTINGS), "TEST_DATABASE_URL": url,
                **env}
    return subprocess.Popen([sys.executable, str(ROOT / "manage.py"), f"--settings={TEST_SETTINGS}", *args], cwd=ROOT,
                            env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=300)
    return process.returncode, stdout, stderr


def reflected_schema(url: str) -> dict[str, Any]:
    """Every table's columns, keys and indexes as SQLAlchemy reflects them from this node."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        inspector = sa.inspect(engine)
        return {
            table: {
                "columns": [(c["name"], str(c["type"]), c["nullable"], c.get("default"))
                            for c in inspector.get_columns(table)],
                "pk": inspector.get_pk_constraint(table),
                "fks": sorted(inspector.get_foreign_keys(table), key=repr),
                "indexes": sorted(inspector.get_indexes(table), key=repr),
                "unique": sorted(inspector.get_unique_constraints(table), key=repr),
            }
            for table in sorted(inspector.get_table_names())
        }
    finally:
        engine.dispose()


def test_get_lock_holds_on_one_node_only(galera_cluster: list[dbservers.Server]) -> None:
    # Why the cluster needs another lock: two sessions on two nodes both get the "same" GET_LOCK.
    sessions = [pymysql.connect(host=node.host, port=node.port, user=node.user, password=node.password)
                for node in galera_cluster[:2]]
    try:
        got = []
        for session in sessions:
            with session.cursor() as cursor:
                cursor.execute("SELECT GET_LOCK('fastapi-manage-test', 0)")
                got.append(cursor.fetchone()[0])
        assert got == [1, 1]
    finally:
        for session in sessions:
            session.close()


@pytest.mark.parametrize("round_", range(1, ROUNDS + 1))
def test_migrators_on_three_nodes_apply_each_revision_once(round_: int, galera_database: list[str]) -> None:
    results = [finish(p) for p in [manage(url, "migrate") for url in galera_database]]
    for status, stdout, stderr in results:
        assert status == 0, stdout + stderr
        assert stderr == ""
    applied = Counter(line.split()[1] for _, stdout, _ in results for line in stdout.splitlines()
                      if line.strip().startswith("Applying "))
    assert applied == Counter(REVISIONS)  # every revision, each exactly once, on whichever node won the lock
    assert sum("No migrations to apply." in stdout for _, stdout, _ in results) == len(galera_database) - 1
    schemas = [reflected_schema(url) for url in galera_database]
    assert {"projects", "tasks", "alembic_version", GALERA_LOCK_TABLE} <= set(schemas[0])
    assert schemas[1] == schemas[0] and schemas[2] == schemas[0]
    for url in galera_database:
        assert version_rows(url) == [HEAD]
    if round_ == 1:
        # The lock table is the tool's bookkeeping: `check --database` finds every node as its revision says.
        for url in galera_database:
            status, stdout, stderr = finish(manage(url, "check", "--database"))
            assert status == 0, stdout + stderr


def test_uvicorn_workers_on_three_nodes_migrate_at_start_up_exactly_once(
    galera_database: list[str], tmp_path: Path
) -> None:
    # 4 workers: two on the first node, one on each of the others, all starting at once.
    workers = [2, 1, 1]
    with ExitStack() as stack:
        apps = [stack.enter_context(uvicorn_app(url, tmp_path, migrate_on_startup=True, workers=count,
                                                name=f"node{index + 1}", settings_module=FIXTURE_SETTINGS))
                for index, (url, count) in enumerate(zip(galera_database, workers, strict=True))]
        for app, count in zip(apps, workers, strict=True):
            wait_until_up(app, started_workers=count)
            with app.client() as http:
                assert http.get("/health/ready").status_code == 200
    logs = "".join(app.log for app in apps)
    assert logs.count("Application startup complete.") == sum(workers)
    assert logs.count("Applied 8 migration(s)") == 1, logs
    assert logs.count(f"No migrations to apply; database at {HEAD}.") == sum(workers) - 1, logs
    for bad in ("Error", "ERROR", "Traceback", "Deadlock"):
        assert bad not in logs, logs
    schemas = [reflected_schema(url) for url in galera_database]
    assert schemas[1] == schemas[0] and schemas[2] == schemas[0]


def test_a_node_in_rsu_mode_is_refused(galera_cluster: list[dbservers.Server], galera_database: list[str]) -> None:
    # Rolling Schema Upgrade: DDL would change this node only, and the nodes would drift apart.
    node = galera_cluster[1]
    admin = pymysql.connect(host=node.host, port=node.port, user=node.user, password=node.password, autocommit=True)
    try:
        with admin.cursor() as cursor:
            cursor.execute("SET GLOBAL wsrep_OSU_method = 'RSU'")
        status, _, stderr = finish(manage(galera_database[1], "migrate"))
    finally:
        with admin.cursor() as cursor:
            cursor.execute("SET GLOBAL wsrep_OSU_method = 'TOI'")
        admin.close()
    assert status == 1
    assert stderr.splitlines() == [
        f"CommandError: {make_url(galera_database[1]).render_as_string(hide_password=True)} is a Galera node with "
        "wsrep_OSU_method=RSU: DDL would change this node only. Migrate with wsrep_OSU_method=TOI "
        "(SET GLOBAL wsrep_OSU_method='TOI')."
    ]
    assert all(version_rows_or_none(url) is None for url in galera_database)


HOLDER = textwrap.dedent("""
    import time
    from project.core.runner import migrator
    from project.core.conf import load_settings

    with migrator.locked_connection(load_settings("fixture_app.settings.test")):
        print("locked", flush=True)
        time.sleep(300)
""")


def test_the_lock_holds_across_nodes_and_a_killed_holder_is_taken_over(galera_database: list[str]) -> None:
    lease = "3"
    env = {**os.environ, **fixture_env(settings_module=TEST_SETTINGS), "TEST_DATABASE_URL": galera_database[0],
           "MIGRATE_LOCK_LEASE": lease}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        # A migrate on another node waits for it (and here gives up after 1 s, as MIGRATE_LOCK_TIMEOUT says).
        status, _, stderr = finish(manage(galera_database[1], "migrate", MIGRATE_LOCK_TIMEOUT="1"))
        assert status == 1
        assert stderr.startswith("CommandError: another migrate is running on "), stderr
        assert version_rows_or_none(galera_database[1]) is None
        # `migrate --plan` on the third node sees the lock held, without waiting for it.
        status, stdout, _ = finish(manage(galera_database[2], "migrate", "--plan"))
        assert status == 0 and "A migrate is running on" in stdout, stdout
    finally:
        holder.send_signal(signal.SIGKILL)  # no chance to release anything: only its lease can run out
        holder.wait()
    status, stdout, stderr = finish(manage(galera_database[2], "migrate", MIGRATE_LOCK_LEASE=lease))
    assert status == 0, stdout + stderr
    assert "Applying 0001" in stdout
    for url in galera_database:
        assert version_rows(url) == [HEAD]


def version_rows_or_none(url: str) -> list[str] | None:
    try:
        return version_rows(url)
    except sa.exc.ProgrammingError:  # no alembic_version table: nothing ran
        return None


HALF_WAY = textwrap.dedent("""
    import time
    from project.core.history.plan import make_plan
    from project.core.history.scripts import alembic_config, current_heads, script_directory
    from project.core.runner import migrator
    from project.core.conf import load_settings

    settings = load_settings("fixture_app.settings.test")
    script = script_directory(alembic_config(settings))
    with migrator.locked_connection(settings) as connection:
        plan = make_plan(script, current_heads(connection), "0004")
        migrator.run_plan(settings, connection, plan, script=script)
        print("half-way", flush=True)
        time.sleep(300)
""")


def test_a_node_leaving_mid_migration_lets_another_node_finish(tmp_path: Path) -> None:
    # A cluster of its own: one of its nodes dies for good.
    cluster = dbservers.start_galera_cluster(tmp_path)
    try:
        name = f"t_{uuid.uuid4().hex[:12]}"
        cluster[0].create_database(name)
        urls = [node.url(name) for node in cluster]
        for url in urls:
            wait_for(lambda url=url: can_connect(url), "CREATE DATABASE reaching every node")
        env = {**os.environ, **fixture_env(settings_module=TEST_SETTINGS), "TEST_DATABASE_URL": urls[2],
               "MIGRATE_LOCK_LEASE": "3"}
        holder = subprocess.Popen([sys.executable, "-c", HALF_WAY], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "half-way"
            # The third node leaves the cluster while its migrator holds the lock half-way through the plan.
            assert cluster[2].process is not None
            cluster[2].process.send_signal(signal.SIGKILL)
            cluster[2].process.wait()
            status, stdout, stderr = finish(manage(urls[0], "migrate"))
        finally:
            holder.kill()
            holder.wait()
        assert status == 0, stdout + stderr
        # What the lost node committed reached the others: the survivor goes on from there.
        assert "currently at 0004" in stdout
        assert "Applying 0004" not in stdout and "Applying 0005" in stdout
        assert version_rows(urls[0]) == version_rows(urls[1]) == [HEAD]
        assert reflected_schema(urls[0]) == reflected_schema(urls[1])
    finally:
        dbservers.stop_cluster(cluster)
