"""A hot standby (PostgreSQL streaming replication) and a read-only MariaDB: `migrate` refuses them in one
line before anything is attempted, and readiness on a standby follows what it has replayed.

On the fixture application (tests/fixture_app): its prod and dev settings, its eight revisions."""

from __future__ import annotations

import uuid
from pathlib import Path

import dbservers
import httpx
import sqlalchemy as sa
from conftest import FIXTURE_SETTINGS, fixture_env, run_manage
from servers import table_names, uvicorn_app, version_rows, wait_until_up
from sqlalchemy.engine import make_url
from topology_fixtures import can_connect, wait_for

HEAD = "0008"
PROD = "fixture_app.settings.prod"


def prod_env(**urls: str) -> dict[str, str]:
    return fixture_env(settings_module=PROD, **urls)


def masked(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def standby_refusal(url: str) -> str:
    return (f"CommandError: {masked(url)} is a read-only standby (in recovery): "
            "point MIGRATION_DATABASE_URL/DATABASE_URL at the primary.")


def test_migrate_on_a_standby_is_refused_before_anything_runs(pg_server, pg_standby, pg_database: str) -> None:
    standby_url = pg_standby.url(pg_database)
    wait_for(lambda: can_connect(standby_url), "the standby replaying CREATE DATABASE")
    result = run_manage(f"--settings={PROD}", "migrate", env=prod_env(PROD_DATABASE_URL=standby_url))
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.splitlines() == [standby_refusal(standby_url)]
    assert pg_standby.password not in result.stderr
    assert "Applying" not in result.stdout and "Traceback" not in result.stderr
    # The same when only the migration connection points at the standby (the app may well read from one).
    result = run_manage(f"--settings={PROD}", "migrate", env=prod_env(PROD_DATABASE_URL=pg_server.url(pg_database),
                                                                    PROD_MIGRATION_DATABASE_URL=standby_url))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [standby_refusal(standby_url)]
    assert table_names(pg_server.url(pg_database)) == set()


def test_readiness_on_a_standby_turns_200_once_it_has_replayed_the_head(
    pg_server, pg_standby, pg_database: str, tmp_path: Path
) -> None:
    standby_url = pg_standby.url(pg_database)
    wait_for(lambda: can_connect(standby_url), "the standby replaying CREATE DATABASE")
    with uvicorn_app(standby_url, tmp_path, migrate_on_startup=False, settings_module=FIXTURE_SETTINGS) as app:
        wait_until_up(app)
        with app.client() as http:
            before = http.get("/health/ready")
            assert before.status_code == 503
            assert before.json()["status"] == "migrations pending" and before.json()["pending"] == 8
            # The primary migrates (what a pre-deploy job does); the standby replays it.
            result = run_manage(f"--settings={PROD}", "migrate", "--allow-destructive",
                                env=prod_env(PROD_DATABASE_URL=pg_server.url(pg_database)))
            assert result.returncode == 0, result.stderr
            after = wait_for(lambda: _ready(http), "readiness on the standby")
    assert after.json() == {"current": HEAD, "head": HEAD, "pending": 0, "status": "ready"}
    assert version_rows(standby_url) == [HEAD]


def _ready(http: httpx.Client) -> httpx.Response | None:
    response = http.get("/health/ready")
    return response if response.status_code == 200 else None


def test_a_read_only_mariadb_is_refused(mysql_server: dbservers.Server, tmp_path: Path) -> None:
    db_url = mysql_server.create_database(f"t_{uuid.uuid4().hex[:12]}")
    admin = sa.create_engine(mysql_server.url("mysql"), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as connection:
        connection.exec_driver_sql("SET GLOBAL read_only = ON")
    try:
        result = run_manage("migrate", env=fixture_env(db_url))
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql("SET GLOBAL read_only = OFF")
        admin.dispose()
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"CommandError: {masked(db_url)} is a read-only standby (read_only=ON): "
        "point MIGRATION_DATABASE_URL/DATABASE_URL at the primary."
    ]
    # root may still write to a read_only server: only the refusal kept it empty.
    assert table_names(db_url) == set()
    result = run_manage("migrate", env=fixture_env(db_url))
    assert result.returncode == 0, result.stderr
    assert version_rows(db_url) == [HEAD]
    mysql_server.drop_database(make_url(db_url).database)


def test_a_database_that_only_allows_read_only_transactions_is_refused(pg_server, pg_database: str) -> None:
    url = pg_server.url(pg_database)
    admin = sa.create_engine(pg_server.url("postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'ALTER DATABASE "{pg_database}" SET default_transaction_read_only = on')
    admin.dispose()
    result = run_manage(f"--settings={PROD}", "migrate", env=prod_env(PROD_DATABASE_URL=url))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"CommandError: {masked(url)} only allows read-only transactions (default_transaction_read_only=on): "
        "point MIGRATION_DATABASE_URL/DATABASE_URL at the primary, or turn it off for this user and database."
    ]
    assert table_names(url) == set()
