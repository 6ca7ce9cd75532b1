"""Bad input: one clear line on stderr, exit 1 or 2, no traceback, no password, nothing written.

Every case goes through the real CLI (`python manage.py ...` in a subprocess).
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import fixture_env, run_manage
from migcopy import fixture_copy, one_clean_line

from project.core.db import create_engine_for

PASSWORD = "Pw-d0-not-print-7f3a"


def _dev(url: str, *args: str, **env: str):
    return run_manage(*args, env={"SETTINGS_MODULE": "dev", "DEV_DATABASE_URL": url, **env}, in_process=True)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the block ends


def _state(url: str) -> tuple[set[str], tuple[str, ...]]:
    from project.core.history.scripts import current_heads

    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            tables = set(sa.inspect(connection).get_table_names())
            return tables, current_heads(connection)
    finally:
        engine.dispose()


# --- no database needed -----------------------------------------------------------------------------


def test_unknown_command() -> None:
    line = one_clean_line(run_manage("migrat"))
    assert "Unknown command: 'migrat'" in line and "Did you mean 'migrate'" in line


def test_unknown_settings_name() -> None:
    result = run_manage("migrate", "--settings=staging", in_process=True)
    assert "Unknown settings 'staging'" in one_clean_line(result)
    assert result.returncode == 2


def test_missing_url() -> None:
    result = run_manage("migrate", "--settings=prod", env={"PROD_DATABASE_URL": ""}, in_process=True)
    assert "PROD_DATABASE_URL is not set" in one_clean_line(result)
    assert result.returncode == 2


@pytest.mark.parametrize(("url", "expected"), [
    (f"postgresql+psycopg2//app:{PASSWORD}@db.invalid/app", "DATABASE_URL is malformed"),
    (f"nosuchdb://app:{PASSWORD}@db.invalid/app", "Unknown database dialect or driver"),
])
def test_malformed_url(url: str, expected: str) -> None:
    result = _dev(url, "migrate")
    assert expected in one_clean_line(result, PASSWORD)
    assert result.returncode == 2


@pytest.mark.parametrize("url", [
    # Drivers SQLAlchemy knows that the project does not install (every driver of docs/settings.md is).
    f"postgresql+pg8000://app:{PASSWORD}@127.0.0.1:5432/app",
    f"mysql+mysqldb://app:{PASSWORD}@127.0.0.1:3306/app",
])
def test_missing_driver(url: str) -> None:
    line = one_clean_line(_dev(url, "migrate"), PASSWORD)
    assert "not installed" in line and "pip install" in line


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
@pytest.mark.parametrize("host", ["db.invalid", "127.0.0.1"])
def test_unreachable_host_names_host_and_port(kind: str, host: str) -> None:
    driver = {"postgresql": "postgresql+psycopg2", "mysql": "mysql+pymysql"}[kind]
    port = _closed_port()
    line = one_clean_line(_dev(f"{driver}://app:{PASSWORD}@{host}:{port}/app", "migrate"), PASSWORD)
    assert f"Cannot reach {kind} server {host}:{port}" in line


def test_sqlite_in_missing_directory_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir"
    line = one_clean_line(_dev(f"sqlite:///{missing / 'app.sqlite3'}", "migrate"))
    assert "directory is missing or not writable" in line
    assert not (tmp_path / "no").exists()


def test_sqlite_read_only(tmp_path: Path) -> None:
    db = tmp_path / "ro.sqlite3"
    assert run_manage("migrate", "0001", "-v0", env=fixture_env(f"sqlite:///{db}"), in_process=True).returncode == 0
    before = db.read_bytes()
    # mode=ro: read-only whoever runs the test (root ignores file permissions).
    line = one_clean_line(run_manage("migrate", env=fixture_env(f"sqlite:///file:{db}?mode=ro&uri=true"),
                                     in_process=True))
    assert "read-only" in line or "not writable" in line
    assert db.read_bytes() == before


def test_version_file_with_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    copy = fixture_copy(tmp_path)
    path = copy.add("0009", "0008", upgrade="op.add_column('projects', sa.Column('x', sa.Integer())")
    text = path.read_text()
    line_no = text[: text.index("op.add_column")].count("\n") + 1
    result = copy.manage("migrate", db_url=f"sqlite:///{tmp_path / 'db.sqlite3'}", in_process=True)
    line = one_clean_line(result)
    assert f"0009_test.py:{line_no}" in line and "syntax error" in line
    assert not (tmp_path / "db.sqlite3").exists() or _state(f"sqlite:///{tmp_path / 'db.sqlite3'}")[1] == ()


def test_several_heads(tmp_path: Path) -> None:
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008")
    copy.add("0010", "0008")
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    line = one_clean_line(copy.manage("migrate", db_url=url, in_process=True))
    assert "2 heads" in line and "makemigrations --merge" in line
    assert _state(url)[1] == ()


# --- on each engine ---------------------------------------------------------------------------------


def test_unknown_and_ambiguous_revision(fixture_manage, db_url: str) -> None:
    assert fixture_manage("migrate", "0002", "-v0", in_process=True).returncode == 0
    password = sa.make_url(db_url).password
    assert "Unknown revision '0042'" in one_clean_line(fixture_manage("migrate", "0042", in_process=True), password)
    ambiguous = fixture_manage("migrate", "000", in_process=True)
    assert "Ambiguous revision prefix '000'" in one_clean_line(ambiguous, password)
    assert _state(db_url)[1] == ("0002",)


def test_upgrade_that_raises_names_the_revision(db_url: str, tmp_path: Path) -> None:
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", upgrade="raise RuntimeError('boom in 0009')")
    assert copy.manage("migrate", "0008", "-v0", db_url=db_url, in_process=True).returncode == 0
    line = one_clean_line(copy.manage("migrate", db_url=db_url, in_process=True), sa.make_url(db_url).password)
    assert "0009" in line and "RuntimeError: boom in 0009" in line
    assert _state(db_url)[1] == ("0008",)


@pytest.fixture(params=["postgresql", "mysql"])
def server(request):
    return request.getfixturevalue("pg_server" if request.param == "postgresql" else "mysql_server")


def test_wrong_password(server) -> None:
    url = sa.make_url(server.url("postgres" if server.kind == "postgresql" else "mysql"))
    url = url.set(password=PASSWORD).render_as_string(hide_password=False)
    line = one_clean_line(_dev(url, "migrate"), PASSWORD, server.password)
    assert "wrong user or password" in line
    assert f"{server.host}:{server.port}" in line


def test_missing_database(server) -> None:
    line = one_clean_line(_dev(server.url("no_such_db_here"), "migrate"), server.password)
    assert "does not exist" in line and "Create it first" in line


# --- the variable to fix, and SSL -------------------------------------------------------------------


def test_connection_errors_name_the_variable_the_settings_read() -> None:
    """prod reads PROD_DATABASE_URL: the line says to check that, not a DATABASE_URL nobody set."""
    url = f"postgresql+psycopg2://app:{PASSWORD}@127.0.0.1:{_closed_port()}/app"
    env = fixture_env(settings_module="fixture_app.settings.prod", PROD_DATABASE_URL=url)
    line = one_clean_line(run_manage("migrate", env=env, in_process=True), PASSWORD)
    assert "is PROD_DATABASE_URL right?" in line, line

    # The migration connection has a variable of its own.
    direct = f"postgresql+psycopg2://app:{PASSWORD}@127.0.0.1:{_closed_port()}/app"
    line = one_clean_line(run_manage("migrate", env={**env, "PROD_MIGRATION_DATABASE_URL": direct}, in_process=True),
                          PASSWORD)
    assert "is PROD_MIGRATION_DATABASE_URL right?" in line, line

    malformed = one_clean_line(_dev(f"postgresql+psycopg2//app:{PASSWORD}@db.invalid/app", "migrate"), PASSWORD)
    assert malformed.startswith("CommandError: DEV_DATABASE_URL is malformed"), malformed


def test_an_unset_variable_is_named_with_the_default_in_use(monkeypatch: pytest.MonkeyPatch) -> None:
    from project.core.conf import load_settings

    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    monkeypatch.delenv("TEST_DATABASE_URL", raising=False)
    settings = load_settings("fixture_app.settings.test")
    assert settings.variable_for("DATABASE_URL") == "TEST_DATABASE_URL (unset, so fixture_app.settings.test's default)"
    assert settings.variable_for("SILENCED_CHECKS") == "SILENCED_CHECKS"  # no variable gave it
    monkeypatch.setenv("TEST_DATABASE_URL", "mysql+pymysql://u:p@db.example.com/app")
    assert load_settings("fixture_app.settings.test").variable_for("DATABASE_URL") == "TEST_DATABASE_URL"


def test_ssl_negotiation_failure_is_reported_as_ssl(pg_server, mysql_server) -> None:
    """The test servers have no SSL; a URL that requires it fails before login: said as SSL, not as a refused
    login (libpq gives no SQLSTATE there) nor as an unreachable server."""
    pg = sa.make_url(pg_server.url("postgres"))
    for url in (pg.update_query_dict({"sslmode": "require"}),
                pg.set(drivername="postgresql+psycopg").update_query_dict({"sslmode": "verify-full"})):
        line = one_clean_line(run_manage("migrate", env=fixture_env(url.render_as_string(False)), in_process=True),
                              pg.password)
        assert line.startswith(f"CommandError: SSL negotiation with postgresql server {pg.host}:{pg.port} failed"), line
        assert "Check the SSL options (sslmode, sslrootcert) in DEV_DATABASE_URL." in line and "Login" not in line

    my = sa.make_url(mysql_server.url("mysql")).update_query_dict({"ssl_ca": "/etc/ssl/certs/ca-certificates.crt"})
    line = one_clean_line(run_manage("migrate", env=fixture_env(my.render_as_string(False)), in_process=True),
                          my.password)
    assert line.startswith(f"CommandError: SSL negotiation with mysql server {my.host}:{my.port} failed"), line
