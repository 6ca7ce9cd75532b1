"""The error model (issue 10, item 6).

- one family: CommandError and MigrationError live in project.core.errors; management.base and migrator
  re-export the same classes; every migration error (offline ones too) is a MigrationError; no import
  cycle between errors and management.base;
- database failures are classified by what the driver reports (SQLSTATE, MySQL errno, SQLite result
  code, the dialect's is_disconnect), produced here by real failures on real servers;
- the Alembic internals the tool still uses are pinned: these tests fail when Alembic changes them.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from conftest import FIXTURE_SETTINGS, ROOT
from sqlalchemy.exc import DBAPIError

from project.core import errors, offline
from project.core.conf import load_settings
from project.core.errors import DatabaseFailure, DestructiveStepsRefused, MigrationError, classify
from project.core.history.scripts import alembic_config, script_directory
from project.core.management import base

# --- one family, no cycle ------------------------------------------------------------------------


def test_one_family_re_exported() -> None:
    assert base.CommandError is errors.CommandError
    assert MigrationError is errors.MigrationError
    assert DestructiveStepsRefused is errors.DestructiveStepsRefused
    for family in (errors.DestructiveStepsRefused, errors.UnknownRevision, offline.OfflineError):
        assert issubclass(family, errors.MigrationError)
    assert str(errors.UnknownRevision("abc")) == (
        "The database is at revision abc, which no version file defines: is this checkout older than the database?")


def test_errors_imports_no_command_framework() -> None:
    code = ("import sys, project.core.errors; "
            "print(sorted(m for m in sys.modules if m.startswith(('project.core.management', 'sqlalchemy'))))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_describe_words_a_migration_error_as_it_is() -> None:
    assert errors.describe(errors.UnknownRevision("abc")) == (str(errors.UnknownRevision("abc")), 1)
    assert errors.describe(base.CommandError("bad usage", returncode=2)) == ("bad usage", 2)


# --- real failures, classified by code -----------------------------------------------------------


def _failure(url: str, *statements: str, isolation_level: str | None = None) -> DBAPIError:
    """The DBAPIError that running `statements` on `url` raises (connecting counts as the first)."""
    kwargs = {"isolation_level": isolation_level} if isolation_level else {}
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, **kwargs)
    try:
        with engine.connect() as connection:
            for statement in statements:
                connection.exec_driver_sql(statement)
    except DBAPIError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError(f"nothing failed on {url}: {statements}")


def _with(url: str, **parts) -> str:
    return sa.make_url(url).set(**parts).render_as_string(hide_password=False)


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_postgresql_failures(pg_server) -> None:
    url = pg_server.url("postgres")
    # Before login completes libpq gives no SQLSTATE: a probe of the address tells the two apart.
    assert classify(_failure(_with(url, password="wrong")), _with(url, password="wrong")) \
        is DatabaseFailure.LOGIN_OR_NO_DATABASE
    closed = _with(url, port=_closed_port())
    assert classify(_failure(closed), closed) is DatabaseFailure.UNREACHABLE
    read_only = _failure(url, "SET TRANSACTION READ ONLY", "CREATE TABLE t_ro (id int)")
    assert read_only.orig.pgcode == "25006" and classify(read_only, url) is DatabaseFailure.READ_ONLY
    killed = _failure(url, "SELECT pg_terminate_backend(pg_backend_pid())")
    assert classify(killed, url) is DatabaseFailure.DISCONNECTED
    syntax = _failure(url, "SELEC 1")
    assert classify(syntax, url) is DatabaseFailure.OTHER and not errors.is_environmental(syntax, url)


def test_mysql_failures(mysql_server) -> None:
    url = mysql_server.url("mysql")
    assert classify(_failure(_with(url, password="wrong")), url) is DatabaseFailure.LOGIN
    assert classify(_failure(_with(url, database="no_such_db")), url) is DatabaseFailure.NO_DATABASE
    closed = _with(url, port=_closed_port())
    assert classify(_failure(closed), closed) is DatabaseFailure.UNREACHABLE
    read_only = _failure(url, "CREATE DATABASE IF NOT EXISTS ro_test", "CREATE TABLE IF NOT EXISTS ro_test.t (id int)",
                         "SET SESSION TRANSACTION READ ONLY", "START TRANSACTION", "INSERT INTO ro_test.t VALUES (1)")
    assert read_only.orig.args[0] == 1792 and classify(read_only, url) is DatabaseFailure.READ_ONLY
    killed = _failure(url, "KILL CONNECTION_ID()", "SELECT 1")
    assert classify(killed, url) is DatabaseFailure.DISCONNECTED
    syntax = _failure(url, "SELEC 1")
    assert classify(syntax, url) is DatabaseFailure.OTHER


def test_sqlite_failures(tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'no' / 'dir' / 'db.sqlite3'}"
    assert classify(_failure(missing, "CREATE TABLE t (id int)"), missing) is DatabaseFailure.CANNOT_OPEN
    db = tmp_path / "db.sqlite3"
    sa.create_engine(f"sqlite:///{db}").connect().close()
    read_only = f"sqlite:///file:{db}?mode=ro&uri=true"
    failure = _failure(read_only, "CREATE TABLE t (id int)")
    assert failure.orig.sqlite_errorname.startswith("SQLITE_READONLY")
    assert classify(failure, read_only) is DatabaseFailure.READ_ONLY and errors.is_environmental(failure, read_only)


# --- Alembic internals still in use, pinned --------------------------------------------------------


def test_upgrade_revs_is_what_alembic_command_uses() -> None:
    """upgrade_or_downgrade runs env.py on an already loaded ScriptDirectory with the very
    revision callbacks alembic.command.upgrade/downgrade build: when Alembic changes those, so must we.
    The steps are read from the fixture application's history (tests/fixture_app, 0001..0008)."""
    from alembic import command
    from alembic.script import ScriptDirectory

    assert "script._upgrade_revs(revision, rev)" in inspect.getsource(command.upgrade)
    assert "script._downgrade_revs(revision, rev)" in inspect.getsource(command.downgrade)
    for name in ("_upgrade_revs", "_downgrade_revs"):
        assert list(inspect.signature(getattr(ScriptDirectory, name)).parameters) == [
            "self", "destination", "current_rev"]
    script = script_directory(alembic_config(load_settings(FIXTURE_SETTINGS)))
    up = script._upgrade_revs("0008", "0006")
    assert [step.revision.revision for step in up] == ["0007", "0008"]  # in the order they run
    down = script._downgrade_revs("0006", "0008")
    assert [step.revision.revision for step in down] == ["0008", "0007"]


def test_batch_operations_impl_takes_what_safety_passes() -> None:
    """safety._recording builds BatchOperationsImpl positionally, in the order of Alembic's own
    Operations.batch_alter_table: pin both signatures."""
    from alembic.operations import Operations
    from alembic.operations.batch import BatchOperationsImpl

    assert list(inspect.signature(BatchOperationsImpl.__init__).parameters) == [
        "self", "operations", "table_name", "schema", "recreate", "copy_from", "table_args", "table_kwargs",
        "reflect_args", "reflect_kwargs", "naming_convention", "partial_reordering"]
    assert list(inspect.signature(Operations.batch_alter_table).parameters) == [
        "self", "table_name", "schema", "recreate", "partial_reordering", "copy_from", "table_args",
        "table_kwargs", "reflect_args", "reflect_kwargs", "naming_convention"]


def test_parents_come_from_the_public_down_revision() -> None:
    """`alembic.util.to_tuple(script.down_revision)` replaced Script._versioned_down_revisions."""
    uses = [str(path.relative_to(ROOT)) for path in (ROOT / "project").rglob("*.py")
            if "_versioned_down_revisions" in path.read_text()]
    assert uses == []
