"""Engine x driver: every URL a FastAPI team writes, sync or async, for what depends on the driver.

The default drivers (pysqlite, psycopg2, PyMySQL) run the whole suite through `db_url`; here the
same real servers are reached through the other drivers of the driver table of docs/settings.md, the URL built from
`db_url` by swapping its drivername. Async drivers run migrations as Alembic's async template does
(project.core.db.sync_entry) and the application on an AsyncSession.

The tool on the fixture application (tests/fixture_app: projects and tasks, its eight revisions); what the
demo application's REST API does on each driver is tests/demo/test_demo_drivers.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import FIXTURE_SETTINGS, ROOT, TESTS_DIR, fixture_env, run_manage
from servers import concurrent_migrates, table_names, uvicorn_app, version_rows, wait_until_up
from sqlalchemy.engine import make_url
from test_server import test_runserver_banner_warns_about_unapplied_migrations as runserver_banner

from project.core.db import create_engine_for
from project.core.management import call_command
from project.core.management.base import CommandError

# (engine of the `db_url` fixture, driver): every driver of the driver table of docs/settings.md but the defaults.
SYNC = [("sqlite", "sqlite+pysqlite"), ("postgresql", "postgresql+psycopg"), ("mysql", "mariadb+pymysql")]
ASYNC = [("sqlite", "sqlite+aiosqlite"), ("postgresql", "postgresql+asyncpg"),
         ("postgresql", "postgresql+psycopg_async"), ("mysql", "mysql+asyncmy"), ("mysql", "mysql+aiomysql")]
ALL = SYNC + ASYNC
# For the costly multi-process tests: one async driver per engine, and psycopg 3 both ways.
ONE_ASYNC_PER_ENGINE = [("sqlite", "sqlite+aiosqlite"), ("postgresql", "postgresql+asyncpg"),
                        ("postgresql", "postgresql+psycopg_async"), ("postgresql", "postgresql+psycopg"),
                        ("mysql", "mysql+asyncmy")]


def drivers(pairs: list[tuple[str, str]]):
    """Parametrize `db_url` (indirectly: its engine) and `driver` together."""
    return pytest.mark.parametrize(("db_url", "driver"), pairs, indirect=["db_url"], ids=[d for _, d in pairs])


@pytest.fixture
def url(db_url: str, driver: str) -> str:
    return make_url(db_url).set(drivername=driver).render_as_string(hide_password=False)


@pytest.fixture
def driver_settings(url: str, monkeypatch: pytest.MonkeyPatch):
    from project.core.conf import load_settings

    monkeypatch.setenv("DEV_DATABASE_URL", url)
    monkeypatch.setenv("SETTINGS_MODULE", FIXTURE_SETTINGS)
    return load_settings(FIXTURE_SETTINGS)


def command(name: str, *args: str, **options) -> str:
    out = StringIO()
    call_command(name, *args, stdout=out, **options)
    return out.getvalue()


def rows(engine: sa.Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


@drivers(ALL)
def test_every_command_migrates_up_zero_up_with_rows(driver_settings, db_url: str, url: str) -> None:
    # Rows are written and read through the default driver: what the driver under test migrated.
    plain = create_engine_for(db_url)
    try:
        assert "Apply 0001 Create projects and tasks" in command("migrate", plan=True)
        with pytest.raises(CommandError, match="8 migration"):
            command("migrate", check=True)
        command("migrate", "0001")
        with plain.begin() as conn:
            conn.execute(sa.text("INSERT INTO projects (id, slug, name) VALUES (1, 'apollo', 'Apollo')"))
            conn.execute(sa.text("INSERT INTO tasks (id, project_id, title, notes, legacy_flag) VALUES "
                                 "(1, 1, 'Hello', 'first words', :t), (2, 1, 'Draft', NULL, :f)"),
                         {"t": True, "f": False})
        out = command("migrate")
        assert out.count("Applying") == 7 and f"Database: {make_url(url).render_as_string()}" in out
        # 0007 (the data migration) ran: the task with details is done, on every driver.
        assert rows(plain, "SELECT id, state FROM tasks ORDER BY id") == [(1, "done"), (2, "open")]
        assert rows(plain, "SELECT id, slug, is_active FROM projects") == [(1, "apollo", True)]
        command("migrate", check=True)
        shown = command("showmigrations")
        assert shown.count("[X]") == 8, shown
        assert "System check identified no issues" in command("check", database=True)

        # Down to 0004: data stays; then zero and up again (the PostgreSQL enum type goes and comes back).
        command("migrate", "0004")
        assert rows(plain, "SELECT id, title, details FROM tasks ORDER BY id") == [
            (1, "Hello", "first words"), (2, "Draft", None)]
        command("migrate", "zero")
        assert set(sa.inspect(plain).get_table_names()) == {
            "alembic_version", "alembic_migration_log", "alembic_migration_fleet"}
        assert command("migrate").count("Applying") == 8
        assert version_rows(db_url) == ["0008"]
    finally:
        plain.dispose()


@drivers(ALL)
def test_cli_on_the_driver(url: str, db_url: str) -> None:
    """The same through manage.py in a fresh process: what a user types, nothing imported before."""
    env = fixture_env(url)
    result = run_manage("migrate", env=env, in_process=True)
    assert result.returncode == 0 and result.stderr == "", result.stdout + result.stderr
    assert "Applied 8 migration(s)" in result.stdout
    shown = run_manage("showmigrations", env=env, in_process=True)
    assert shown.returncode == 0 and shown.stdout.count("[X]") == 8, shown.stdout + shown.stderr
    # Offline SQL needs only the dialect: the same as the default driver's, byte for byte.
    offline = run_manage("sqlmigrate", "0006", env=env, in_process=True)
    default = run_manage("sqlmigrate", "0006", env=fixture_env(db_url), in_process=True)
    assert offline.returncode == 0 and offline.stdout == default.stdout, offline.stderr


@drivers(ALL)
def test_readiness_on_the_driver(url: str, db_url: str, tmp_path: Path) -> None:
    env = fixture_env(url)
    with uvicorn_app(url, tmp_path, migrate_on_startup=False, settings_module=FIXTURE_SETTINGS) as server:
        wait_until_up(server)
        with server.client() as http:
            empty = http.get("/health/ready")
            assert empty.status_code == 503, empty.text
            assert (empty.json()["current"], empty.json()["pending"]) == (None, 8)
            assert run_manage("migrate", "0005", env=env).returncode == 0
            halfway = http.get("/health/ready")
            assert halfway.status_code == 503
            assert (halfway.json()["current"], halfway.json()["pending"]) == ("0005", 3)
            assert run_manage("migrate", env=env).returncode == 0
            ready = http.get("/health/ready")
            assert ready.status_code == 200, ready.text
            assert (ready.json()["current"], ready.json()["pending"]) == ("0008", 0)
    assert "Traceback" not in server.log
    assert version_rows(db_url) == ["0008"]


@drivers(ONE_ASYNC_PER_ENGINE)
def test_runserver_banner_on_the_driver(url: str, tmp_path: Path) -> None:
    runserver_banner(url, tmp_path)


WORKERS = 4
MIGRATES = 8


@drivers(ONE_ASYNC_PER_ENGINE)
def test_workers_starting_at_once_migrate_exactly_once(url: str, db_url: str, tmp_path: Path) -> None:
    with uvicorn_app(url, tmp_path, migrate_on_startup=True, workers=WORKERS,
                     settings_module=FIXTURE_SETTINGS) as server:
        wait_until_up(server, started_workers=WORKERS)
        with server.client() as http:
            # Readiness reads the version through the application's engine, on the driver under test.
            assert http.get("/health/ready").status_code == 200
    log = server.log
    assert log.count("Application startup complete.") == WORKERS
    assert log.count("Applied 8 migration(s)") == 1, log
    assert log.count("No migrations to apply; database at 0008.") == WORKERS - 1, log
    for bad in ("Error", "ERROR", "Traceback", "never awaited"):
        assert bad not in log, log
    assert version_rows(db_url) == ["0008"]


@drivers(ONE_ASYNC_PER_ENGINE)
def test_concurrent_manage_migrate(url: str, db_url: str) -> None:
    env = {**os.environ, **fixture_env(url), "NO_COLOR": "1"}
    concurrent_migrates(env, MIGRATES)
    assert version_rows(db_url) == ["0008"]
    assert {"projects", "tasks"} <= table_names(db_url)


@drivers(ASYNC)
def test_async_connection_outside_the_bridge_is_a_clear_error(url: str) -> None:
    from project.core import db

    assert db.is_async_url(url)
    with pytest.raises(RuntimeError, match="is an async driver: open its connection inside"):
        with db.connect(url):
            pass
    # Inside the bridge the very same call works, and runs on the async driver.
    driver = db.sync_entry(lambda: _driver_of(url))()
    assert driver == make_url(url).get_dialect().driver


def _driver_of(url: str) -> str:
    from project.core import db

    with db.connect(url) as connection:
        connection.exec_driver_sql("SELECT 1")
        return connection.dialect.driver


@drivers(ALL)
def test_dbshell_on_the_driver(url: str) -> None:
    """dbshell needs only the URL's parts; the driver does not change the client or the login."""
    result = run_manage("dbshell", env=fixture_env(url), input="SELECT 6*7;\n")
    assert result.returncode == 0, result.stderr
    assert "42" in result.stdout


@drivers([("sqlite", "sqlite+aiosqlite"), ("postgresql", "postgresql+asyncpg"), ("mysql", "mysql+aiomysql")])
def test_plain_alembic_on_an_async_url(url: str, db_url: str, tmp_path: Path) -> None:
    """`alembic upgrade head` without manage.py: env.py opens its own connection through the same bridge."""
    env = {**os.environ, **fixture_env(url)}
    alembic = str(Path(sys.executable).parent / "alembic")
    result = subprocess.run([alembic, "-c", str(fixture_alembic_ini(tmp_path)), "upgrade", "head"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "MissingGreenlet" not in result.stderr and "never awaited" not in result.stderr
    assert version_rows(db_url) == ["0008"]


def fixture_alembic_ini(tmp_path: Path) -> Path:
    """The project's alembic.ini with script_location on the fixture application's history
    (whose env.py is the project's own, linked)."""
    import configparser

    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "alembic.ini")
    config["alembic"]["script_location"] = str(TESTS_DIR / "fixture_app" / "migrations")
    config["alembic"]["prepend_sys_path"] = str(ROOT)
    path = tmp_path / "alembic.ini"
    with path.open("w") as out:
        config.write(out)
    return path


SERVER_DRIVERS = [pair for pair in ALL if pair[0] != "sqlite"]


@drivers(SERVER_DRIVERS)
def test_connection_failures_read_the_same_on_every_driver(url: str) -> None:
    """A wrong password and an unreachable server: the one line the default drivers give, on every driver."""
    from migcopy import one_clean_line
    from servers import find_free_port

    real = make_url(url)
    kind = real.get_backend_name()
    wrong = real.set(password="Wr0ng-pw-x9").render_as_string(hide_password=False)
    line = one_clean_line(run_manage("migrate", env=fixture_env(wrong), in_process=True), "Wr0ng-pw-x9")
    assert line.startswith(f"CommandError: Login refused by {kind} server {real.host}:{real.port}"), line
    port = find_free_port()
    closed = real.set(port=port).render_as_string(hide_password=False)
    line = one_clean_line(run_manage("migrate", env=fixture_env(closed), in_process=True), real.password or "")
    assert line.startswith(f"CommandError: Cannot reach {kind} server {real.host}:{port}"), line
