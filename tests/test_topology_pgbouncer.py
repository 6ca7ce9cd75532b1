"""PgBouncer in transaction pooling mode in front of the test PostgreSQL: migrations take the direct
MIGRATION_DATABASE_URL and stay exactly-once; without it, every migrate refuses and changes nothing.

On the fixture application (tests/fixture_app): its prod and dev settings, its eight revisions."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import dbservers
import psycopg2
import pytest
import sqlalchemy as sa
from conftest import FIXTURE_SETTINGS, fixture_env
from dbservers import find_free_port
from servers import ROOT, app_env, serve, table_names, version_rows, wait_until_up
from sqlalchemy.engine import make_url

from project.core.runner import topology

MIGRATES = 6
REVISIONS = [f"{n:04d}" for n in range(1, 9)]
PROD = "fixture_app.settings.prod"


def masked(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def migrate_at_once(env: dict[str, str], count: int = MIGRATES) -> list[tuple[int, str, str]]:
    """`count` × `manage.py --settings=fixture_app.settings.prod migrate` started together; (status, stdout,
    stderr) of each."""
    full_env = {**os.environ, "NO_COLOR": "1", "CONFIRM_DESTRUCTIVE": "0", **fixture_env(settings_module=PROD), **env}
    processes = [subprocess.Popen([sys.executable, str(ROOT / "manage.py"), f"--settings={PROD}", "migrate"],
                                  cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(count)]
    outputs = [p.communicate(timeout=300) for p in processes]
    return [(p.returncode, *output) for p, output in zip(processes, outputs, strict=True)]


def test_the_pooler_is_in_transaction_mode(pgbouncer: dbservers.Pooler) -> None:
    # What the other tests rely on, asked of PgBouncer's own admin console.
    # (psycopg2 itself: the console speaks only the simple protocol, no transactions, no type lookups.)
    url = make_url(pgbouncer.admin_url())
    console = psycopg2.connect(host=url.host, port=url.port, user=url.username, password=url.password,
                               dbname=url.database)
    console.autocommit = True
    try:
        with console.cursor() as cursor:
            cursor.execute("SHOW CONFIG")
            config = {row[0]: row[1] for row in cursor.fetchall()}
    finally:
        console.close()
    assert config["pool_mode"] == "transaction"


def test_migrators_through_pgbouncer_with_a_direct_url_apply_each_revision_once(
    pg_server: dbservers.Server, pgbouncer: dbservers.Pooler, pg_database: str
) -> None:
    pooled, direct = pgbouncer.url(pg_database), pg_server.url(pg_database)
    results = migrate_at_once({"PROD_DATABASE_URL": pooled, "PROD_MIGRATION_DATABASE_URL": direct})
    for status, stdout, stderr in results:
        assert status == 0, stdout + stderr
        assert stderr == ""
        assert f"Database: {masked(direct)}" in stdout  # what it migrates: the direct connection
    applied = Counter(line.split()[1] for _, stdout, _ in results for line in stdout.splitlines()
                      if line.strip().startswith("Applying "))
    assert applied == Counter(REVISIONS)  # every revision, each exactly once
    assert sum("No migrations to apply." in stdout for _, stdout, _ in results) == MIGRATES - 1
    # The application's pooled URL sees the result.
    assert version_rows(pooled) == [REVISIONS[-1]]
    assert {"projects", "tasks"} <= table_names(pooled)


def test_migrators_through_pgbouncer_without_a_direct_url_refuse_and_change_nothing(
    pgbouncer: dbservers.Pooler, pg_server: dbservers.Server, pg_database: str
) -> None:
    pooled = pgbouncer.url(pg_database)
    results = migrate_at_once({"PROD_DATABASE_URL": pooled})
    expected = (f"CommandError: {masked(pooled)} goes through a transaction-mode pooler such as PgBouncer, where "
                "the migration lock cannot hold: set PROD_MIGRATION_DATABASE_URL (MIGRATION_DATABASE_URL) to a "
                "direct connection to the PostgreSQL server; the application keeps DATABASE_URL. Nothing was changed.")
    for status, stdout, stderr in results:
        assert status == 1, stdout + stderr
        assert stderr.splitlines() == [expected]
        assert pgbouncer.password not in stderr
    assert table_names(pg_server.url(pg_database)) == set()


def test_a_migration_url_through_the_pooler_is_refused(pgbouncer: dbservers.Pooler, pg_database: str) -> None:
    pooled = pgbouncer.url(pg_database)
    [(status, _, stderr)] = migrate_at_once({"PROD_DATABASE_URL": pooled, "PROD_MIGRATION_DATABASE_URL": pooled}, 1)
    assert status == 1
    assert stderr.splitlines() == [
        f"CommandError: MIGRATION_DATABASE_URL ({masked(pooled)}) goes through a transaction-mode pooler such as "
        "PgBouncer, where the migration lock cannot hold: point it at the PostgreSQL server itself. "
        "Nothing was changed."
    ]


@pytest.mark.parametrize("mode", ["direct", "session", "transaction"])
def test_the_pool_probe_tells_transaction_pooling_apart(
    mode: str, pg_server: dbservers.Server, pgbouncer: dbservers.Pooler, pg_database: str, tmp_path: Path
) -> None:
    session_pooler = dbservers.start_pgbouncer(pg_server, tmp_path, pool_mode="session") if mode == "session" else None
    server = {"direct": pg_server, "session": session_pooler, "transaction": pgbouncer}[mode]
    engine = sa.create_engine(server.url(pg_database))
    try:
        with engine.connect() as connection:
            # Several times over: a probe that passed by luck once would not pass every time.
            assert [topology.transaction_pooled(connection) for _ in range(5)] == [mode == "transaction"] * 5
            # The shortcut that spares a direct session the probe: only there is the key the driver was given
            # the backend's own (PgBouncer makes one up, in either mode).
            backend = connection.execute(sa.text("SELECT pg_backend_pid()")).scalar()
            assert (topology.key_data_pid(connection) == backend) is (mode == "direct")
            opened: list[object] = []
            sa.event.listen(engine, "checkout", lambda *_: opened.append(1))
            if mode != "transaction":
                topology.check_migration_target(connection, "the server", direct_url=None, env_name="X")
                # A direct session is checked on its own connection; behind a pooler the probe opens a second.
                assert len(opened) == (0 if mode == "direct" else 1)
    finally:
        engine.dispose()
        if session_pooler is not None:
            session_pooler.stop()


def test_start_up_migrations_behind_pgbouncer_use_the_direct_url(
    pg_server: dbservers.Server, pgbouncer: dbservers.Pooler, pg_database: str, tmp_path: Path
) -> None:
    pooled, direct = pgbouncer.url(pg_database), pg_server.url(pg_database)
    workers = 4
    port = find_free_port()
    args = [sys.executable, "-m", "uvicorn", "project.app.asgi:app", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers)]
    env = app_env(pooled, True, FIXTURE_SETTINGS, DEV_MIGRATION_DATABASE_URL=direct)
    with serve(args, env, tmp_path / "uvicorn.log", port) as app:
        wait_until_up(app, started_workers=workers)
        with app.client() as http:
            # Readiness reads through the application's pooled URL.
            assert http.get("/health/ready").json()["status"] == "ready"
    log = app.log
    assert log.count(f"Migrating {masked(direct)} (MIGRATE_ON_STARTUP)...") == workers, log
    assert log.count("Applied 8 migration(s)") == 1, log
    assert log.count(f"No migrations to apply; database at {REVISIONS[-1]}.") == workers - 1, log
    assert "Traceback" not in log and "ERROR" not in log


def test_start_up_migrations_behind_pgbouncer_without_a_direct_url_stop_the_worker(
    pg_server: dbservers.Server, pgbouncer: dbservers.Pooler, pg_database: str, tmp_path: Path
) -> None:
    pooled = pgbouncer.url(pg_database)
    port = find_free_port()
    args = [sys.executable, "-m", "uvicorn", "project.app.asgi:app", "--host", "127.0.0.1", "--port", str(port)]
    with serve(args, app_env(pooled, True, FIXTURE_SETTINGS), tmp_path / "uvicorn.log", port) as app:
        status = app.process.wait(timeout=120)  # the worker refuses to serve a schema it could not migrate
    assert status != 0
    [failed] = [line for line in app.log.splitlines() if "Start-up migrations failed:" in line]
    assert f"{masked(pooled)} goes through a transaction-mode pooler" in failed
    assert "set DEV_MIGRATION_DATABASE_URL (MIGRATION_DATABASE_URL) to a direct connection" in failed
    assert "Application startup complete." not in app.log
    assert table_names(pg_server.url(pg_database)) == set()


def test_a_failing_direct_url_is_named_as_such(
    pg_server: dbservers.Server, pgbouncer: dbservers.Pooler, pg_database: str
) -> None:
    wrong = make_url(pg_server.url(pg_database)).set(password="wrong-secret-123")
    [(status, _, stderr)] = migrate_at_once({"PROD_DATABASE_URL": pgbouncer.url(pg_database),
                                             "PROD_MIGRATION_DATABASE_URL": wrong.render_as_string(False)}, 1)
    assert status == 1
    [line] = stderr.splitlines()
    # The server that refused is the one behind MIGRATION_DATABASE_URL, not the pooler the app uses.
    # (psycopg2 gives no SQLSTATE here: the line says "login or no such database", the server's words in it.)
    assert line.startswith(f"CommandError: Login refused by postgresql server 127.0.0.1:{pg_server.port} "), line
    assert line.endswith("check PROD_MIGRATION_DATABASE_URL."), line
    assert "wrong-secret-123" not in line and pg_server.password not in line
