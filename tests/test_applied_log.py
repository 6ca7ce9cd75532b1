"""The applied log (alembic_migration_log), checksums of applied revisions, and `manage.py repair` (issue 13,
items 1-3 and 6), on SQLite, MariaDB and PostgreSQL: real databases, the real CLI where its output is the point."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import FIXTURE_SETTINGS, ROOT, run_fixture_manage, run_manage
from migcopy import fixture_copy, one_clean_line
from test_offline_sql import engine  # noqa: F401 - fixture: fresh databases and the engine's own client

from project.core.bookkeeping import is_schema_statement
from project.core.db import create_engine_for, settings_connection
from project.core.history import applied_log
from project.core.history.checksums import file_checksum
from project.core.history.scripts import alembic_config, current_heads
from project.core.runner import migrator

VERSIONS = Path(__file__).resolve().parent / "fixture_app" / "migrations" / "versions"
HALF_WAY = """
op.create_table("fault_t", sa.Column("id", sa.Integer(), primary_key=True))
op.add_column("projects", sa.Column("fault_c", sa.Integer(), nullable=True))
op.execute(sa.table("no_such_table", sa.column("id")).insert().values(id=1))
"""
FIXED = """
op.create_table("fault_t", sa.Column("id", sa.Integer(), primary_key=True))
with op.batch_alter_table("projects") as batch_op:
    batch_op.add_column(sa.Column("fault_c", sa.Integer(), nullable=True))
"""
FIXED_DOWN = """
with op.batch_alter_table("projects") as batch_op:
    batch_op.drop_column("fault_c")
op.drop_table("fault_t")
"""


def log_rows(db_url: str) -> list[sa.Row]:
    eng = create_engine_for(db_url)
    try:
        with eng.connect() as connection:
            return list(connection.execute(sa.select(applied_log.log_table).order_by(applied_log.log_table.c.id)))
    finally:
        eng.dispose()


def execute(db_url: str, *statements: str) -> None:
    eng = create_engine_for(db_url)
    try:
        with eng.begin() as connection:
            for statement in statements:
                connection.execute(sa.text(statement))
    finally:
        eng.dispose()


def heads_of(db_url: str) -> tuple[str, ...]:
    eng = create_engine_for(db_url)
    try:
        with eng.connect() as connection:
            return current_heads(connection)
    finally:
        eng.dispose()


def prod_settings_module(copy, tmp_path: Path) -> str:
    """Production settings (CHECKSUM_MISMATCH error by default) on the copy's history."""
    name = f"{copy.module}_prod"
    (tmp_path / f"{name}.py").write_text(f"from fixture_app.settings.prod import *  # noqa\n"
                                         f"MIGRATIONS_DIR = {str(copy.root)!r}\n")
    return name


def test_log_rows_for_up_and_down(fixture_settings, db_url: str) -> None:
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    migrator.migrate(fixture_settings, "head")
    migrator.migrate(fixture_settings, "0006")
    rows = log_rows(db_url)
    assert [(r.revision, r.direction, r.state) for r in rows] == [
        *[(f"000{i}", "up", "applied") for i in range(1, 9)], ("0008", "down", "unapplied"),
        ("0007", "down", "unapplied")]
    for row in rows:
        path = next(VERSIONS.glob(f"{row.revision}_*.py"))
        assert row.checksum == file_checksum(str(path))
        assert before <= row.started_at <= dt.datetime.now(dt.UTC)
        assert row.started_at.tzinfo is not None and 0 <= row.duration < 60
        assert row.client_host == socket.gethostname() and row.db_user
        assert row.statements is None
    # A primary key (Galera replicates only tables that have one).
    eng = create_engine_for(db_url)
    try:
        assert sa.inspect(eng).get_pk_constraint(applied_log.TABLE_NAME)["constrained_columns"] == ["id"]
    finally:
        eng.dispose()

    shown = run_manage("showmigrations", "-v", "2", env={"SETTINGS_MODULE": "fixture_app.settings.dev",
                                                         "PYTHONPATH": str(Path(__file__).parent),
                                                         "DEV_DATABASE_URL": db_url}, in_process=True)
    assert shown.returncode == 0, shown.stderr
    line = next(ln for ln in shown.stdout.splitlines() if " 0002 " in ln)
    stamp = rows[1].started_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    assert line.startswith(" [X] 0002") and f"(applied {stamp}, {rows[1].duration:.3f}s)" in line
    assert any(ln.startswith(" [ ] 0008") and "unapplied" in ln for ln in shown.stdout.splitlines())


def test_fake_and_backfill_of_revisions_applied_without_the_log(fixture_settings, db_url: str) -> None:
    """Plain Alembic moves alembic_version without writing the log (as a migrate killed between its commit and
    its log row would): the next migrate backfills those revisions with their checksums, nothing lost."""
    from alembic import command

    with settings_connection(fixture_settings) as connection:
        command.upgrade(alembic_config(fixture_settings, connection=connection), "0003")
        if connection.in_transaction():
            connection.commit()
    migrator.migrate(fixture_settings, "0006")
    migrator.migrate(fixture_settings, "0007", fake=True)
    rows = log_rows(db_url)
    assert [(r.revision, r.state) for r in rows] == [
        ("0001", "backfilled"), ("0002", "backfilled"), ("0003", "backfilled"), ("0004", "applied"),
        ("0005", "applied"), ("0006", "applied"), ("0007", "faked")]
    assert all(r.checksum == file_checksum(str(next(VERSIONS.glob(f"{r.revision}_*.py")))) for r in rows)

    # Plain `alembic downgrade`: the log is told at the next migrate, which then applies it for real.
    with settings_connection(fixture_settings) as connection:
        command.downgrade(alembic_config(fixture_settings, connection=connection), "0006")
        if connection.in_transaction():
            connection.commit()
    migrator.migrate(fixture_settings, "head")
    assert [(r.revision, r.direction, r.state) for r in log_rows(db_url)[7:]] == [
        ("0007", "down", "unapplied"), ("0007", "up", "applied"), ("0008", "up", "applied")]


COSMETIC = '''"""Widen the name column: a docstring rewritten"""
# A comment, imports reordered, blank lines and formatting changed: the same revision.
from alembic import op
import sqlalchemy as sa
from collections.abc import Sequence

revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Now with a docstring."""


    with op.batch_alter_table("projects") as batch_op:
        batch_op.alter_column("name", existing_type=sa.String(length=50),
                              type_=sa.String(length=200), existing_nullable=True)  # same call


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch_op:
        batch_op.alter_column(
            "name", existing_type=sa.String(length=200), type_=sa.String(length=50), existing_nullable=True
        )
'''


def test_edited_applied_revision(db_url: str, tmp_path: Path) -> None:
    copy = fixture_copy(tmp_path)
    prod = prod_settings_module(copy, tmp_path)
    as_prod = {"SETTINGS_MODULE": prod, "PROD_DATABASE_URL": db_url}
    assert copy.manage("migrate", "-v0", db_url=db_url, in_process=True).returncode == 0
    path = copy.versions / "0003_widen_projects_name.py"
    original = path.read_text()

    path.write_text(COSMETIC)
    assert copy.manage("migrate", "-v0", db_url=db_url, env=as_prod, in_process=True).returncode == 0

    # A semantic edit: one argument of one operation.
    path.write_text(original.replace("type_=sa.String(length=200)", "type_=sa.String(length=250)"))
    refused = copy.manage("migrate", db_url=db_url, env=as_prod, in_process=True)
    line = one_clean_line(refused, sa.make_url(db_url).password)
    assert refused.returncode == 1
    assert "0003_widen_projects_name.py (revision 0003) was edited after it was applied" in line
    assert "restore the file" in line and "manage.py repair 0003" in line
    # The downgrade counts too.
    path.write_text(original.replace("type_=sa.String(length=50)", "type_=sa.String(length=60)"))
    assert "revision 0003" in one_clean_line(copy.manage("migrate", db_url=db_url, env=as_prod, in_process=True))

    # dev: warned once, and the migrate goes on.
    warned = copy.manage("migrate", "0007", db_url=db_url, in_process=True)
    assert warned.returncode == 0, warned.stderr
    assert warned.stderr.count("Warning: ") == 1 and "revision 0003" in warned.stderr
    assert "Unapplying 0008" in warned.stdout

    checked = copy.manage("check", "--database", db_url=db_url, in_process=True)
    assert "revision 0003) was edited after it was applied" in checked.stdout

    repaired = copy.manage("repair", "0003", db_url=db_url, in_process=True)
    assert repaired.returncode == 0, repaired.stderr
    assert "0003: recorded the checksum" in repaired.stdout
    after = copy.manage("migrate", db_url=db_url, env={**as_prod, "CONFIRM_DESTRUCTIVE": "0"}, in_process=True)
    assert after.returncode == 0 and "Warning" not in after.stderr, after.stderr
    assert log_rows(db_url)[-2].state == "repaired"


def test_failing_half_way_is_recorded_then_repaired(db_url: str, tmp_path: Path) -> None:
    copy = fixture_copy(tmp_path)
    path = copy.add("0009", "0008", upgrade=HALF_WAY, downgrade=FIXED_DOWN, message="fault half way")
    assert copy.manage("migrate", "0008", "-v0", db_url=db_url, in_process=True).returncode == 0
    failed = copy.manage("migrate", db_url=db_url, in_process=True)
    assert failed.returncode == 1
    last = log_rows(db_url)[-1]
    assert (last.revision, last.direction, last.state) == ("0009", "up", "failed")
    ran = last.statements.splitlines()
    assert ran[0].startswith("CREATE TABLE fault_t") and ran[1].startswith("ALTER TABLE projects ADD")
    assert ran[2].startswith("-- failed: ") and "no_such_table" in ran[2] and len(ran) == 3
    shown = copy.manage("showmigrations", "-v", "2", db_url=db_url, in_process=True).stdout
    assert next(ln for ln in shown.splitlines() if "0009" in ln).startswith(" [!] 0009") and "CREATE TABLE" in shown

    # The operator fixes the file; on MariaDB what ran is exactly what the fixed revision creates.
    path.write_text(path.read_text().replace(_indent(HALF_WAY), _indent(FIXED)))
    repaired = copy.manage("repair", db_url=db_url, in_process=True)
    assert repaired.returncode == 0, repaired.stderr
    if db_url.startswith("mysql"):
        assert "0009: the database has what it creates; recorded as applied" in repaired.stdout
        assert heads_of(db_url) == ("0009",)
    else:  # rolled back: nothing to keep, migrate runs it again
        assert "0009: nothing of it is left" in repaired.stdout
        assert heads_of(db_url) == ("0008",)
        assert copy.manage("migrate", "-v0", db_url=db_url, in_process=True).returncode == 0
    assert heads_of(db_url) == ("0009",)
    shown = copy.manage("showmigrations", "-v", "2", db_url=db_url, in_process=True).stdout
    assert next(ln for ln in shown.splitlines() if "0009" in ln).startswith(" [X] 0009")


def test_repair_says_what_differs(db_url: str, tmp_path: Path) -> None:
    """A failed revision whose database is neither before nor after it: nothing is cleared."""
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", upgrade=HALF_WAY, downgrade=FIXED_DOWN, message="fault half way")
    assert copy.manage("migrate", "0008", "-v0", db_url=db_url, in_process=True).returncode == 0
    assert copy.manage("migrate", "-v0", db_url=db_url, in_process=True).returncode == 1
    (copy.versions / "0009_test.py").write_text((copy.versions / "0009_test.py").read_text().replace(
        _indent(HALF_WAY), _indent(FIXED)))
    execute(db_url, "CREATE TABLE stray_t (id INTEGER PRIMARY KEY)")
    line = one_clean_line(copy.manage("repair", "0009", db_url=db_url, in_process=True))
    assert "Revision 0009 failed and the database matches neither" in line and "stray_t" in line
    assert log_rows(db_url)[-1].state == "failed"


def _fail_half_way(db_url: str, tmp_path: Path):
    """0009 (HALF_WAY) fails after creating fault_t and adding projects.fault_c: the copy and its file."""
    copy = fixture_copy(tmp_path)
    path = copy.add("0009", "0008", upgrade=HALF_WAY, downgrade=FIXED_DOWN, message="fault half way")
    assert copy.manage("migrate", "0008", "-v0", db_url=db_url, in_process=True).returncode == 0
    assert copy.manage("migrate", "-v0", db_url=db_url, in_process=True).returncode == 1
    assert log_rows(db_url)[-1].state == "failed"
    return copy, path


def test_repair_after_undoing_by_hand(db_url: str, tmp_path: Path) -> None:
    """The operator undoes by hand what the failed revision left (MariaDB keeps it; PostgreSQL and SQLite rolled it
    back already): repair finds nothing of it left, clears the failure, and migrate runs the fixed file."""
    copy, path = _fail_half_way(db_url, tmp_path)
    if db_url.startswith("mysql"):
        execute(db_url, "DROP TABLE fault_t", "ALTER TABLE projects DROP COLUMN fault_c")
    assert "revision 0009 failed" in copy.manage("check", "--database", db_url=db_url, in_process=True).stdout
    repaired = copy.manage("repair", db_url=db_url, in_process=True)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "0009: nothing of it is left in the database; failure cleared" in repaired.stdout, repaired.stdout
    last = log_rows(db_url)[-1]
    assert (last.revision, last.direction, last.state) == ("0009", "down", "repaired")
    assert heads_of(db_url) == ("0008",)
    shown = copy.manage("showmigrations", "-v", "2", db_url=db_url, in_process=True).stdout
    assert next(ln for ln in shown.splitlines() if "0009" in ln).startswith(" [ ] 0009"), shown

    path.write_text(path.read_text().replace(_indent(HALF_WAY), _indent(FIXED)))
    migrated = copy.manage("migrate", db_url=db_url, in_process=True)
    assert migrated.returncode == 0 and "Applying 0009 fault half way... OK" in migrated.stdout, migrated.stderr
    assert heads_of(db_url) == ("0009",)
    last = log_rows(db_url)[-1]
    assert (last.revision, last.direction, last.state) == ("0009", "up", "applied")
    shown = copy.manage("showmigrations", "-v", "2", db_url=db_url, in_process=True).stdout
    assert next(ln for ln in shown.splitlines() if "0009" in ln).startswith(" [X] 0009"), shown
    assert "[!]" not in shown
    # The models lack fault_t: drift, but no failure.
    checked = copy.manage("check", "--database", db_url=db_url, in_process=True)
    assert "fault_t" in checked.stdout and "failed" not in checked.stdout, checked.stdout


@pytest.mark.parametrize("db_url", ["mysql"], indirect=True)
def test_repair_refuses_a_half_undo(db_url: str, tmp_path: Path) -> None:
    """MariaDB: the operator dropped the table but not the column: repair names the column, the log stays failed,
    whether the file that failed is still as it was (it cannot be replayed) or fixed."""
    copy, path = _fail_half_way(db_url, tmp_path)
    execute(db_url, "DROP TABLE fault_t")
    line = one_clean_line(copy.manage("repair", "0009", db_url=db_url, in_process=True))
    assert "Revision 0009 failed and the database differs from what was there before it" in line, line
    assert "fault_c" in line and "no_such_table" in line and "fault_t" not in line, line
    path.write_text(path.read_text().replace(_indent(HALF_WAY), _indent(FIXED)))
    line = one_clean_line(copy.manage("repair", "0009", db_url=db_url, in_process=True))
    assert "Revision 0009 failed and the database matches neither" in line and "fault_t" in line, line
    last = log_rows(db_url)[-1]
    assert (last.revision, last.state) == ("0009", "failed")
    assert heads_of(db_url) == ("0008",)


def _indent(body: str) -> str:
    return "\n".join("    " + line for line in body.strip().splitlines())


# --- item 6: faults --------------------------------------------------------------------------------------


def test_log_faults_give_one_line(db_url: str, tmp_path: Path) -> None:
    copy = fixture_copy(tmp_path)
    prod = prod_settings_module(copy, tmp_path)
    as_prod = {"SETTINGS_MODULE": prod, "PROD_DATABASE_URL": db_url}
    assert copy.manage("migrate", "0004", "-v0", db_url=db_url, in_process=True).returncode == 0

    # A checksum column holding garbage.
    execute(db_url, f"UPDATE {applied_log.TABLE_NAME} SET checksum = 'not-a-checksum' WHERE revision = '0002'")
    line = one_clean_line(copy.manage("migrate", db_url=db_url, env=as_prod, in_process=True))
    assert "revision 0002" in line and "is not a checksum" in line and "manage.py repair 0002" in line
    assert copy.manage("repair", "0002", "-v0", db_url=db_url, in_process=True).returncode == 0

    # A revision id in the log that no file defines.
    execute(db_url, f"INSERT INTO {applied_log.TABLE_NAME} (revision, direction, state) VALUES ('dead01', 'up', "
                    "'applied')")
    line = one_clean_line(copy.manage("migrate", db_url=db_url, env=as_prod, in_process=True))
    assert "revision dead01 is applied according to" in line and "no version file defines it" in line
    assert "manage.py repair dead01" in line
    repaired = copy.manage("repair", "dead01", db_url=db_url, in_process=True)
    assert "dead01: recorded as removed" in repaired.stdout, repaired.stderr
    as_error = {"CHECKSUM_MISMATCH": "error"}
    assert copy.manage("migrate", "0005", "-v0", db_url=db_url, env=as_error, in_process=True).returncode == 0

    # The log table edited by hand: a column dropped.
    execute(db_url, f"ALTER TABLE {applied_log.TABLE_NAME} DROP COLUMN client_host")
    line = one_clean_line(copy.manage("migrate", db_url=db_url, in_process=True))
    assert f"The applied log table {applied_log.TABLE_NAME} is not as this tool wrote it" in line
    assert heads_of(db_url) == ("0005",)
    # ... the way out the line gives: drop it, and migrate re-creates it with the applied revisions backfilled.
    execute(db_url, f"DROP TABLE {applied_log.TABLE_NAME}")
    assert copy.manage("migrate", "-v0", db_url=db_url, in_process=True).returncode == 0
    assert [(r.revision, r.state) for r in log_rows(db_url)] == [
        *[(f"000{i}", "backfilled") for i in range(1, 6)], *[(f"000{i}", "applied") for i in range(6, 9)]]


def test_racing_migrates_while_the_log_is_created(db_url: str, tmp_path: Path) -> None:
    copy = fixture_copy(tmp_path)
    env = {**os.environ, "NO_COLOR": "1", **copy.env(db_url)}
    racers = [subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in racers]
    for p in racers:
        p.stdout.close()
        p.stderr.close()
    assert [rc for rc, _ in results] == [0, 0], results
    assert [(r.revision, r.state) for r in log_rows(db_url)] == [(f"000{i}", "applied") for i in range(1, 9)]


KILLED = """
op.create_table("kill_t", sa.Column("id", sa.Integer(), primary_key=True))
import os, signal
if os.environ.get("KILL_MIGRATE"):
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_migrate_killed_mid_revision(db_url: str, tmp_path: Path) -> None:
    """SIGKILL inside a revision: on PostgreSQL/SQLite nothing of it (nor of its log row) is kept; on MariaDB its
    DDL and its `running` row are, and the next migrate refuses to run it again blind; repair then records what
    is there (tests/test_interrupted.py: the same mid-revision, stopped every way)."""
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", upgrade=KILLED, downgrade='op.drop_table("kill_t")', message="killed")
    assert copy.manage("migrate", "0008", "-v0", db_url=db_url).returncode == 0
    killed = copy.manage("migrate", "-v0", db_url=db_url, env={"KILL_MIGRATE": "1"})
    assert killed.returncode == -signal.SIGKILL
    assert heads_of(db_url) == ("0008",)
    if db_url.startswith("mysql"):
        assert log_rows(db_url)[-1].state == "running"
        # The next migrate does not run 0009 again: part of it may be applied, and the log cannot say which.
        again = copy.manage("migrate", "-v0", db_url=db_url)
        line = one_clean_line(again)
        assert "Revision 0009 killed did not finish" in line and "manage.py repair 0009" in line, line
        assert [r.state for r in log_rows(db_url) if r.revision == "0009"] == ["running"]
        repaired = copy.manage("repair", "0009", db_url=db_url)
        assert "0009: the database has what it creates; recorded as applied" in repaired.stdout, repaired.stderr
        ours = [r for r in log_rows(db_url) if r.revision == "0009"]
        assert [r.state for r in ours] == ["running", "failed", "repaired"]  # repair heals the log first
        assert "interrupted" in ours[1].statements
    else:
        assert [r.revision for r in log_rows(db_url)] == [f"000{i}" for i in range(1, 9)]
        assert copy.manage("migrate", "-v0", db_url=db_url).returncode == 0
    assert heads_of(db_url) == ("0009",)
    assert log_rows(db_url)[-1].state in {"applied", "repaired"}


def test_checksum_definition() -> None:
    from project.core.history.checksums import source_checksum

    base = (VERSIONS / "0003_widen_projects_name.py").read_text()
    assert source_checksum(base) == source_checksum(COSMETIC)
    for edit in [("length=200), existing_nullable=True\n        )\n\n\ndef down", "length=201), existing_nullable"
                  "=True\n        )\n\n\ndef down"), ('"0002"', '"0001"'), ("existing_nullable=True", "existing_"
                  "nullable=False")]:
        assert edit[0] in base, edit
        assert source_checksum(base.replace(edit[0], edit[1], 1)) != source_checksum(base), edit
    helper = base + "\nLIMIT = 5\n"
    assert source_checksum(helper) != source_checksum(base)


def test_offline_deploy_script_writes_the_log(engine) -> None:  # noqa: F811 - the imported fixture
    script = engine.manage_offline("migrate", "--sql", "0004")
    url = engine.new_database()
    engine.apply(url, script)
    rows = log_rows(url)
    assert [(r.revision, r.direction, r.state) for r in rows] == [(f"000{i}", "up", "applied") for i in range(1, 5)]
    for row in rows:
        assert row.checksum == file_checksum(str(next(VERSIONS.glob(f"{row.revision}_*.py"))))
        assert abs(row.started_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
        assert (row.db_user is None) == (engine.kind == "sqlite")
    # An online migrate after it finds the checksums in order (the production policy) and logs the rest.
    online = run_fixture_manage("migrate", "-v0", env={"DEV_DATABASE_URL": url, "CHECKSUM_MISMATCH": "error"},
                                in_process=True)
    assert online.returncode == 0, online.stderr
    assert [(r.revision, r.state) for r in log_rows(url)[4:]] == [(f"000{i}", "applied") for i in range(5, 9)]


def test_checksum_cache_follows_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from project.core.conf import load_settings
    from project.core.history import checksums

    settings = load_settings("fixture_app.settings.dev")
    # This test's own cache folder: the project's .cache/checksums.json is rewritten by every migrate that runs
    # at the same time (parallel tests), which could drop this test's entry between its write and the read below.
    monkeypatch.setattr(checksums, "cache_dir", lambda settings=None: tmp_path / ".cache")
    version = tmp_path / "0001_x.py"
    version.write_text("from alembic import op\n\ndef upgrade():\n    op.drop_table('a')\n")
    first = checksums.file_checksum(str(version), settings)
    cached = json.loads((checksums.cache_dir(settings) / checksums.CACHE_NAME).read_text())
    assert cached[str(version)][2] == first
    version.write_text("from alembic import op\n\ndef upgrade():\n    op.drop_table('b')\n")  # same size
    os.utime(version, ns=(1, 1))  # and a different mtime
    assert checksums.file_checksum(str(version), settings) != first


def test_mismatch_policy_per_environment(monkeypatch) -> None:
    from project.core.conf import ImproperlyConfigured, load_settings

    monkeypatch.setenv("PROD_DATABASE_URL", "postgresql+psycopg2://app:pw@db.example.com:5432/app")
    monkeypatch.delenv("CHECKSUM_MISMATCH", raising=False)
    for package in ("settings", "fixture_app.settings"):
        policies = {env: applied_log.mismatch_policy(load_settings(f"{package}.{env}"))
                    for env in ("dev", "test", "prod")}
        assert policies == {"dev": "warn", "test": "error", "prod": "error"}, package
    monkeypatch.setenv("CHECKSUM_MISMATCH", "ignore")
    with pytest.raises(ImproperlyConfigured, match="CHECKSUM_MISMATCH='ignore'"):
        applied_log.mismatch_policy(load_settings("fixture_app.settings.prod"))


def test_bookkeeping_is_not_a_statement_of_the_revision() -> None:
    """What a failed revision 'already ran' (the MySQL line, the log's statements) leaves out the tool's own
    rows: the applied log writes into the same connection while the revision's statements are being listed."""

    assert not is_schema_statement(f"UPDATE {applied_log.TABLE_NAME} SET state=%(state)s WHERE id = %(id_1)s")
    assert not is_schema_statement("UPDATE alembic_version SET version_num='0002'")
    assert not is_schema_statement("RESET lock_timeout")
    assert is_schema_statement("ALTER TABLE tasks ADD COLUMN priority INTEGER")


def test_prune_forgets_removed_files(db_url: str, tmp_path: Path) -> None:
    """Django's migrate --prune: the log's rows of a revision whose file was removed go; the rest stay; an
    unknown revision recorded in alembic_version is refused in one line and nothing is deleted."""
    copy = fixture_copy(tmp_path)
    path = copy.add("0009", "0008", upgrade='op.create_table("extra", sa.Column("id", sa.Integer, primary_key=True))',
                    downgrade='op.drop_table("extra")', message="extra table")
    assert copy.manage("migrate", "-v0", db_url=db_url, in_process=True).returncode == 0
    assert copy.manage("migrate", "0008", "-v0", db_url=db_url, in_process=True).returncode == 0
    path.unlink()
    before = [r.revision for r in log_rows(db_url)]
    assert before.count("0009") == 2  # up, then down

    pruned = copy.manage("migrate", "--prune", db_url=db_url, in_process=True)
    assert pruned.returncode == 0, pruned.stderr
    assert "Pruning 0009... OK" in pruned.stdout and "Applying" not in pruned.stdout
    assert [r.revision for r in log_rows(db_url)] == [r for r in before if r != "0009"]
    assert heads_of(db_url) == ("0008",)
    again = copy.manage("migrate", "--prune", db_url=db_url, in_process=True)
    assert "No migrations to prune." in again.stdout

    # alembic_version at a revision whose file is gone: refused before anything is deleted.
    copy.add("0010", "0008", message="applied, then its file lost")
    assert copy.manage("migrate", "-v0", db_url=db_url, in_process=True).returncode == 0
    (copy.versions / "0010_test.py").unlink()
    rows = log_rows(db_url)
    refused = copy.manage("migrate", "--prune", db_url=db_url, in_process=True)
    assert refused.returncode == 1 and "0010" in one_clean_line(refused)
    assert log_rows(db_url) == rows


def test_the_log_appears_with_the_first_revision(db_url: str, tmp_path: Path) -> None:
    """A fresh database gets the log as it gets alembic_version's row: once the first revision has run (in its
    transaction where the engine has transactional DDL), so that revision does not see the tool's table. A first
    revision that fails is still logged, the log then created for its `failed` row."""
    copy = fixture_copy(tmp_path)
    for path in copy.versions.glob("*.py"):
        path.unlink()
    copy.add("0001", None, message="fails first", upgrade="""
        op.create_table("seen", sa.Column("name", sa.String(length=64), primary_key=True))
        names = sa.inspect(op.get_bind()).get_table_names()
        op.bulk_insert(sa.table("seen", sa.column("name", sa.String())), [{"name": n} for n in names])
        op.execute(sa.table("no_such_table", sa.column("id")).insert().values(id=1))
    """)
    failed = copy.manage("migrate", db_url=db_url, in_process=True)
    assert failed.returncode == 1
    rows = log_rows(db_url)
    assert [(r.revision, r.direction, r.state) for r in rows] == [("0001", "up", "failed")]
    assert "no_such_table" in rows[0].statements
    copy.add("0001", None, message="works", filename="0001_test.py", upgrade="""
        op.create_table("seen", sa.Column("name", sa.String(length=64), primary_key=True))
        names = sa.inspect(op.get_bind()).get_table_names()
        op.bulk_insert(sa.table("seen", sa.column("name", sa.String())), [{"name": n} for n in names])
    """)
    if db_url.startswith("mysql"):  # its CREATE TABLE stayed (no transactional DDL): the operator drops it
        execute(db_url, "DROP TABLE seen")
    # The log exists now (it holds the failure): this run is an ordinary one, and the revision sees the log.
    assert copy.manage("migrate", "-v0", db_url=db_url, in_process=True).returncode == 0
    assert [(r.revision, r.state) for r in log_rows(db_url)] == [("0001", "failed"), ("0001", "applied")]

    fresh = f"sqlite:///{tmp_path / 'fresh.db'}" if db_url.startswith("sqlite") else None
    if fresh:  # and on a fresh database the revision sees only what Alembic made before it: alembic_version
        assert copy.manage("migrate", "-v0", db_url=fresh, in_process=True).returncode == 0
        eng = create_engine_for(fresh)
        try:
            with eng.connect() as connection:
                seen = set(connection.execute(sa.text("SELECT name FROM seen")).scalars())
        finally:
            eng.dispose()
        assert seen == {"alembic_version", "seen"}
        assert [(r.revision, r.state) for r in log_rows(fresh)] == [("0001", "applied")]


def test_a_migrate_hashes_the_files_of_its_steps_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The log's checksums of one run are computed together before it starts: one write of the checksum cache per
    migrate, not one per revision (issue 24), and each row still carries its file's checksum."""
    from project.core.conf import load_settings
    from project.core.history import checksums
    from project.core.runner import migrator

    monkeypatch.setattr(checksums, "cache_dir", lambda settings=None: tmp_path / ".cache")
    monkeypatch.setattr(checksums, "_memory", {})
    writes: list[int] = []
    real_write = checksums._write_cache
    monkeypatch.setattr(checksums, "_write_cache", lambda settings: writes.append(1) or real_write(settings))
    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    monkeypatch.setenv("DEV_DATABASE_URL", url)
    settings = load_settings(FIXTURE_SETTINGS)
    plan = migrator.migrate(settings, "head")
    assert len(writes) == 1
    expected = checksums.file_checksums([step.script.path for step in plan.steps], settings)
    assert {(r.revision, r.checksum) for r in log_rows(url)} == {
        (step.revision, expected[step.script.path]) for step in plan.steps}


def test_per_revision_log_statements_are_sqlalchemys_own_compiled_once() -> None:
    """The statements a migrate writes the log with once a revision run as the very SQL SQLAlchemy compiles for
    the dialect, compiled once per dialect (issue 24): on MySQL/MariaDB the multi-row INSERT that marks a revision
    applied and writes the next one's `running` row, which SQLAlchemy cannot cache (it was compiled once a
    revision); elsewhere the row's INSERT, without the RETURNING its Core statement adds on PostgreSQL."""
    from sqlalchemy import make_url

    for version, mariadb in (((10, 11, 6), True), ((8, 0, 36), False)):
        dialect = make_url("mysql+pymysql://").get_dialect()()
        dialect.server_version_info, dialect.is_mariadb = version, mariadb
        statement, order, processors = applied_log._driver_sql(dialect, "advance")
        assert applied_log._driver_sql(dialect, "advance")[0] is statement
        assert applied_log._advance_statement()._generate_cache_key() is None  # why it is compiled once here
        assert statement == str(applied_log._advance_statement().compile(dialect=dialect))
        assert order is not None and {"d_id", "n_started_at", "d_started_at"} <= set(order)  # PyMySQL: positional
        assert {"n_started_at", "d_started_at"} <= processors.keys()  # UTCDateTime's own processing
    dialect = make_url("postgresql+psycopg2://").get_dialect()()
    statement, order, processors = applied_log._driver_sql(dialect, "row")
    assert statement.startswith(f"INSERT INTO {applied_log.TABLE_NAME} (revision, ") and "RETURNING" not in statement
    assert order is None and "started_at" in processors  # psycopg2: named
