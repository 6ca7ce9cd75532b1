"""Errors that point at the right thing: a version file failing in the scratch SQLite replay or in offline
rendering is named (id and file) and the user's database is never blamed; --traceback shows the real cause;
library log lines (sqlglot's) stay off stderr unless -v 2."""

from __future__ import annotations

from pathlib import Path

from migcopy import MigrationsCopy, fixture_copy, one_clean_line

NOWHERE = "sqlite:////nonexistent/dir/x.sqlite3"  # a database that cannot even be opened: never used here


def _copy_with_sqlite_breaker(tmp_path: Path) -> MigrationsCopy:
    copy = fixture_copy(tmp_path)
    # Fails on SQLite only: the scratch replay (and SQLite's offline SQL) run it, PostgreSQL offline does not.
    copy.add("0009", "0008", upgrade='op.execute("ALTER TABLE nosuch ADD COLUMN x INTEGER")',
             downgrade='op.execute("SELECT 1")', message="break on sqlite")
    return copy


def test_scratch_replay_failure_names_the_revision_not_the_database(tmp_path: Path) -> None:
    copy = _copy_with_sqlite_breaker(tmp_path)
    for args in (("makemigrations", "--check"), ("makemigrations", "--dry-run")):
        line = one_clean_line(copy.manage(*args, db_url=NOWHERE, in_process=True))
        assert "scratch SQLite database" in line, line
        assert "revision 0009 (" in line and "0009_test.py" in line, line
        assert "no such table: nosuch" in line, line
        assert "/nonexistent" not in line, line


def test_check_reports_the_replay_failure_as_one_problem(tmp_path: Path) -> None:
    copy = _copy_with_sqlite_breaker(tmp_path)
    result = copy.manage("check", db_url=NOWHERE, in_process=True)
    assert result.returncode == 1
    problems = [line for line in result.stdout.splitlines() if "scratch SQLite database" in line]
    assert len(problems) == 1 and "revision 0009" in problems[0], result.stdout
    assert "/nonexistent" not in result.stdout + result.stderr


def test_traceback_shows_the_real_cause(tmp_path: Path) -> None:
    copy = _copy_with_sqlite_breaker(tmp_path)
    result = copy.manage("makemigrations", "--check", "--traceback", db_url=NOWHERE, in_process=True)
    assert result.returncode != 0
    assert "sqlite3.OperationalError: no such table: nosuch" in result.stderr, result.stderr
    assert "ScratchReplayError" in result.stderr


def test_offline_sqlite_render_failure_names_the_revision(tmp_path: Path) -> None:
    copy = _copy_with_sqlite_breaker(tmp_path)
    line = one_clean_line(copy.manage("sqlmigrate", "0008:0009", "--dialect", "sqlite", db_url=NOWHERE,
                                      in_process=True))
    assert "revision 0009 (" in line and "scratch SQLite database" in line, line
    # PostgreSQL renders it fine: nothing is run offline.
    result = copy.manage("sqlmigrate", "0009", "--dialect", "postgresql", db_url=NOWHERE, in_process=True)
    assert result.returncode == 0, result.stderr
    assert "ALTER TABLE nosuch ADD COLUMN x INTEGER" in result.stdout


def test_revision_that_needs_a_live_database_cannot_render_offline(tmp_path: Path) -> None:
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", message="reads the database", upgrade="""
        rows = op.get_bind().execute(sa.text("SELECT count(*) FROM projects")).scalar()
        op.execute(f"UPDATE projects SET name = name WHERE id > {rows}")
    """)
    line = one_clean_line(copy.manage("sqlmigrate", "0009", "--dialect", "postgresql", db_url=NOWHERE, in_process=True))
    assert "revision 0009 (" in line and "offline for postgresql" in line, line
    assert "it can only run online" in line, line


def test_sqlglot_log_lines_stay_off_stderr(tmp_path: Path) -> None:
    copy = fixture_copy(tmp_path)
    # Raw SQL that sqlglot reads as an opaque command (it logs a warning about it).
    copy.add("0009", "0008", message="vacuum", upgrade='op.execute("VACUUM ANALYZE WITH OPTIONS FOO")',
             downgrade='op.execute("SELECT 1")')
    quiet = copy.manage("sqlmigrate", "0009", "--dialect", "postgresql", db_url=NOWHERE)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == "", quiet.stderr
    loud = copy.manage("sqlmigrate", "0009", "--dialect", "postgresql", "-v", "2", db_url=NOWHERE)
    assert loud.returncode == 0
    assert "unsupported syntax" in loud.stderr, loud.stderr
