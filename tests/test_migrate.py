"""One history, three engines: data survives every step that does not drop it, and the schema
at head is the same everywhere. Run on the fixture application (tests/fixture_app: projects and tasks)."""

from __future__ import annotations

from io import StringIO

import pytest
import sqlalchemy as sa

from project.core.db import create_engine_for
from project.core.management import call_command
from project.core.management.base import CommandError

HEAD = "0008"


def migrate(*args: str, **options) -> str:
    out = StringIO()
    call_command("migrate", *args, stdout=out, **options)
    return out.getvalue()


def rows(engine: sa.Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def version(engine: sa.Engine) -> list[tuple]:
    return rows(engine, "SELECT version_num FROM alembic_version")


@pytest.fixture
def engine(fixture_settings):
    engine = create_engine_for(fixture_settings.DATABASE_URL)
    yield engine
    engine.dispose()


def test_rows_survive_up_down_up(fixture_settings, engine) -> None:
    migrate("0001")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO projects (id, slug, name) VALUES (1, 'apollo', 'Ann')"))
        conn.execute(sa.text(
            "INSERT INTO tasks (id, project_id, title, notes, legacy_flag) VALUES "
            "(1, 1, 'Hello', 'first words', :t), (2, 1, 'Draft', NULL, :f)"
        ), {"t": True, "f": False})

    # 0002 adds a NOT NULL column to a table with rows: the server default fills them.
    migrate("0002")
    assert rows(engine, "SELECT id, slug, name, is_active FROM projects") == [(1, "apollo", "Ann", True)]

    # 0003 widens projects.name: a 150-character name now fits on every engine.
    migrate("0003")
    long_name = "x" * 150
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO projects (id, slug, name) VALUES (2, 'borealis', :n)"), {"n": long_name})

    # 0004 renames tasks.notes; 0005 adds a unique constraint that now rejects duplicates.
    migrate("0005")
    assert rows(engine, "SELECT id, details FROM tasks ORDER BY id") == [(1, "first words"), (2, None)]
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO projects (id, slug) VALUES (3, 'apollo')"))

    # 0006 adds the enum (default open); 0007 closes the tasks that have details; 0008 drops legacy_flag.
    migrate()
    assert version(engine) == [(HEAD,)]
    assert rows(engine, "SELECT id, title, details, state FROM tasks ORDER BY id") == [
        (1, "Hello", "first words", "done"),
        (2, "Draft", None, "open"),
    ]
    assert "legacy_flag" not in {c["name"] for c in sa.inspect(engine).get_columns("tasks")}
    assert rows(engine, "SELECT id, slug, name FROM projects ORDER BY id") == [
        (1, "apollo", "Ann"), (2, "borealis", long_name),
    ]

    # Back to 0004: the enum and the unique constraint go, every row stays.
    out = migrate("0004")
    assert "Unapplying 0008 Drop tasks.legacy_flag... OK" in out
    assert "Unapplying 0005" in out and "Unapplying 0004" not in out
    assert version(engine) == [("0004",)]
    assert rows(engine, "SELECT id, title, details FROM tasks ORDER BY id") == [
        (1, "Hello", "first words"), (2, "Draft", None),
    ]
    assert rows(engine, "SELECT count(*) FROM projects") == [(2,)]

    # Unapplying 0003 narrows projects.name back to 50: MySQL and PostgreSQL refuse to truncate, so
    # shorten the long name first (issue: narrowing is what the safety checks flag).
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE projects SET name = 'Bob' WHERE id = 2"))
    # zero drops everything but the version table; head again works (the PG enum type was dropped).
    migrate("zero")
    assert set(sa.inspect(engine).get_table_names()) == {
        "alembic_version", "alembic_migration_log", "alembic_migration_fleet"}
    assert version(engine) == []
    out = migrate("head")
    assert out.count("Applying") == 8
    assert version(engine) == [(HEAD,)]
    assert rows(engine, "SELECT count(*) FROM tasks") == [(0,)]


def test_plan_check_fake(fixture_settings, engine) -> None:
    out = migrate(plan=True)
    assert "Apply 0001 Create projects and tasks" in out and "Apply 0008" in out
    assert sa.inspect(engine).get_table_names() == [], "--plan must change nothing"

    with pytest.raises(CommandError, match="8 migration"):
        migrate(check=True)

    migrate("0002")
    out = migrate("0001", plan=True)
    assert "Unapply 0002" in out
    assert version(engine) == [("0002",)]

    # --fake records without running: no is_active column appears... because 0003 only alters.
    out = migrate("0003", fake=True)
    assert "0003 Widen projects.name from 50 to 200 characters... FAKED" in out
    assert version(engine) == [("0003",)]
    name_type = {c["name"]: c["type"] for c in sa.inspect(engine).get_columns("projects")}["name"]
    assert name_type.length == 50, "--fake must not run the migration"

    migrate()
    migrate(check=True)  # nothing pending: no error


def test_prefix_and_unknown_targets(fixture_settings, engine) -> None:
    with pytest.raises(CommandError, match="Ambiguous revision prefix '000'"):
        migrate("000")
    with pytest.raises(CommandError, match="Unknown revision 'nope'"):
        migrate("nope")
    migrate("0003")
    assert version(engine) == [("0003",)]


def test_showmigrations(fixture_settings, fixture_manage) -> None:
    migrate("0002")
    result = fixture_manage("showmigrations", in_process=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1] == " [X] 0001 Create projects and tasks"
    assert lines[2].startswith(" [X] 0002")
    assert lines[3].startswith(" [ ] 0003")
    assert len([line for line in lines if line.startswith(" [")]) == 8


def test_closed_output_pipe_does_not_abort_migrate(fixture_settings, engine) -> None:
    import os
    import subprocess
    import sys

    from conftest import ROOT, fixture_env

    env = {**os.environ, **fixture_env(fixture_settings.DATABASE_URL), "NO_COLOR": "1"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "migrate"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().startswith(b"Operations to perform")
    proc.stdout.close()  # as `manage.py migrate | head -1` does
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert b"Traceback" not in err and b"BrokenPipe" not in err
    assert version(engine) == [(HEAD,)]


# What autogenerate writes when a primary key's type changes: `autoincrement=True` (MySQL's MODIFY needs it).
COUNTERS = 'op.create_table("counters", sa.Column("id", sa.Integer(), primary_key=True), sa.Column("n", sa.Integer()))'
WIDEN_ID = """
with op.batch_alter_table("counters", schema=None) as batch_op:
    batch_op.alter_column("id", existing_type=sa.INTEGER(), type_=sa.{to}(), existing_nullable=False,
                          autoincrement=True)
"""


def test_no_alembic_mysql_only_warning_in_migrate_output(db_url: str, tmp_path) -> None:
    """Alembic warns "autoincrement ... only make sense for MySQL" on the other engines, in the middle of
    migrate's output; the argument is right (MySQL needs it) and harmless elsewhere: nothing is printed."""
    from migcopy import fixture_copy

    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", upgrade=COUNTERS, downgrade='op.drop_table("counters")')
    copy.add("0010", "0009", upgrade=WIDEN_ID.format(to="BigInteger"), downgrade=WIDEN_ID.format(to="Integer"))
    for target in ("head", "0009", "head"):
        result = copy.manage("migrate", target, db_url=db_url, in_process=True)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "only make sense for MySQL" not in result.stdout + result.stderr, result.stderr
        assert "Warning" not in result.stderr, result.stderr
