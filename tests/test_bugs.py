"""Issue 10, item 5: the bugs a new user met, each pinned by a test that failed before its fix.

- settings were reloaded leaf-only: base.py kept the environment of its first import;
- a non-numeric MIGRATE_LOCK_TIMEOUT was a bare ValueError;
- /health/ready's 503 showed the database host, port and driver error to any client;
- a recorded revision that no file defines was a raw ResolutionError in showmigrations.

The settings tests are about the project's own settings package (settings/base.py and its environments);
the rest run on the fixture application (tests/fixture_app, history 0001..0008), whatever the project's
own history is.
"""

from __future__ import annotations

import sys
from io import StringIO
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import FIXTURE_SETTINGS, fixture_env, run_manage
from migcopy import one_clean_line
from servers import ROOT, app_env, find_free_port, serve, uvicorn_app, wait_until_up

from project.core.conf import ImproperlyConfigured, load_settings
from project.core.management import call_command

UNKNOWN = "feedface99"
UNKNOWN_LINE = (f"The database is at revision {UNKNOWN}, which no version file defines: "
                "is this checkout older than the database?")
READY_KEYS = {"status", "current", "head", "pending"}


# --- settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dev", "test", "prod"])
def test_settings_are_reloaded_whole(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # MIGRATE_LOCK_TIMEOUT is read in settings/base.py, which every environment module imports.
    monkeypatch.setenv("PROD_DATABASE_URL", "postgresql+psycopg2://app:pw@db.invalid/app")
    monkeypatch.setenv("MIGRATE_LOCK_TIMEOUT", "5")
    assert load_settings(name).MIGRATE_LOCK_TIMEOUT == 5.0
    monkeypatch.setenv("MIGRATE_LOCK_TIMEOUT", "7.5")
    assert load_settings(name).MIGRATE_LOCK_TIMEOUT == 7.5
    monkeypatch.delenv("MIGRATE_LOCK_TIMEOUT")
    assert load_settings(name).MIGRATE_LOCK_TIMEOUT == 300.0


@pytest.mark.parametrize("value", ["soon", "-1", "nan"])
def test_bad_lock_timeout_is_one_line_naming_the_variable(value: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIGRATE_LOCK_TIMEOUT", value)
    with pytest.raises(ImproperlyConfigured, match=f"MIGRATE_LOCK_TIMEOUT='{value}' is not a number"):
        load_settings("dev")
    monkeypatch.delenv("MIGRATE_LOCK_TIMEOUT")
    result = run_manage("migrate", env={"SETTINGS_MODULE": "dev", "MIGRATE_LOCK_TIMEOUT": value,
                                        "DEV_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}, in_process=True)
    assert f"CommandError: MIGRATE_LOCK_TIMEOUT='{value}' is not a number" in one_clean_line(result)
    assert result.returncode == 2
    assert not (tmp_path / "db.sqlite3").exists()


# --- readiness -----------------------------------------------------------------------------------


@pytest.mark.parametrize("driver", ["postgresql+psycopg2", "mysql+pymysql"])
def test_ready_503_names_no_host_port_or_driver_error(driver: str, tmp_path: Path) -> None:
    port = find_free_port()  # nothing listens there
    with uvicorn_app(f"{driver}://app:pw@127.0.0.1:{port}/app", tmp_path, migrate_on_startup=False,
                     settings_module=FIXTURE_SETTINGS) as server:
        wait_until_up(server)
        with server.client() as http:
            first, second = http.get("/health/ready"), http.get("/health/ready")
    for response in (first, second):
        assert response.status_code == 503
        assert response.json() == {"status": "database unavailable", "current": None, "head": "0008",
                                   "pending": None}
        assert str(port) not in response.text and "127.0.0.1" not in response.text
    # The cause is in the server's log, once for the two polls.
    causes = [line for line in server.log.splitlines() if "/health/ready answers 503" in line]
    assert len(causes) == 1, server.log
    assert f"Cannot reach {sa.make_url(driver + '://').get_backend_name()} server 127.0.0.1:{port}" in causes[0]


def _record_unknown_revision(url: str) -> None:
    """Migrate to 0002, then make alembic_version name a revision no file defines."""
    call_command("migrate", "0002", verbosity=0, stdout=StringIO())
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": UNKNOWN})
    engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The fixture application's dev settings on a SQLite file (for what one engine shows as well as three)."""
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    monkeypatch.setenv("DEV_DATABASE_URL", url)
    monkeypatch.setenv("SETTINGS_MODULE", FIXTURE_SETTINGS)
    return url


def test_ready_503_for_an_unknown_revision_logs_why(sqlite_url: str, tmp_path: Path) -> None:
    db_url = sqlite_url
    _record_unknown_revision(db_url)
    with uvicorn_app(db_url, tmp_path, migrate_on_startup=False, settings_module=FIXTURE_SETTINGS) as server:
        wait_until_up(server)
        with server.client() as http:
            response = http.get("/health/ready")
    assert response.status_code == 503
    assert response.json() == {"status": "unknown migration state", "current": UNKNOWN, "head": "0008",
                               "pending": None}
    assert set(response.json()) == READY_KEYS
    assert UNKNOWN_LINE in server.log


# --- an unknown recorded revision: one line on every command that reads the current revision -----


@pytest.mark.parametrize("args", [("showmigrations",), ("showmigrations", "--plan"), ("migrate",),
                                  ("migrate", "--plan"), ("migrate", "--check")])
def test_unknown_revision_is_one_line(fixture_settings, db_url: str, fixture_manage, args: tuple[str, ...]) -> None:
    _record_unknown_revision(db_url)
    result = fixture_manage(*args, in_process=True)
    assert one_clean_line(result, sa.make_url(db_url).password) == f"CommandError: {UNKNOWN_LINE}"
    assert result.returncode == 1


def test_unknown_revision_in_check_and_runserver(sqlite_url: str, tmp_path: Path) -> None:
    db_url = sqlite_url
    _record_unknown_revision(db_url)
    result = run_manage("check", "--database", env=fixture_env(db_url), in_process=True)
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    assert f"database: {UNKNOWN_LINE}" in result.stdout.splitlines()

    port = find_free_port()
    argv = [sys.executable, str(ROOT / "manage.py"), "runserver", f"127.0.0.1:{port}", "--noreload"]
    with serve(argv, app_env(db_url, False, FIXTURE_SETTINGS), tmp_path / "runserver.log", port) as server:
        wait_until_up(server)
    assert f"Warning: could not check for unapplied migrations: {UNKNOWN_LINE}" in server.log.splitlines()
    assert "Traceback" not in server.log


def test_settings_outside_the_settings_package_are_reloaded_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    # fixture_app.settings.dev imports fixture_app.settings.base, which reads MIGRATE_LOCK_TIMEOUT.
    from conftest import FIXTURE_SETTINGS

    monkeypatch.setenv("MIGRATE_LOCK_TIMEOUT", "5")
    assert load_settings(FIXTURE_SETTINGS).MIGRATE_LOCK_TIMEOUT == 5.0
    monkeypatch.setenv("MIGRATE_LOCK_TIMEOUT", "7.5")
    assert load_settings(FIXTURE_SETTINGS).MIGRATE_LOCK_TIMEOUT == 7.5
