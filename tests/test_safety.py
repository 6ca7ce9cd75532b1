"""Destructive steps: classified from Alembic's operation objects and sqlglot, marked in plans, refused in prod.

Run on the fixture application's history (tests/fixture_app)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from migcopy import MigrationsCopy, fixture_copy, one_clean_line

from project.core.history.scripts import alembic_config, current_heads, script_directory
from project.core.inspection import destructive

DIALECTS = ["sqlite", "mysql", "postgresql"]


# --- statements ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(("statement", "expected"), [
    ("ALTER TABLE tasks DROP COLUMN legacy_flag", ["drops column tasks.legacy_flag"]),
    ("DROP TABLE tasks", ["drops table tasks"]),
    ("DELETE FROM tasks WHERE id > 3", ["deletes rows from tasks"]),
    ("DELETE FROM tasks", ["deletes all rows from tasks"]),
    ("UPDATE tasks SET state = 'open'", []),
    ("CREATE TABLE t (id INTEGER)", []),
    ("INSERT INTO tasks (id) VALUES (1)", []),
    ("DROP INDEX ix_tasks_title", ["drops index ix_tasks_title"]),
])
def test_destructive_sql(statement: str, expected: list[str], dialect: str) -> None:
    assert destructive.destructive_sql(statement, dialect) == expected


@pytest.mark.parametrize(("statement", "dialect", "expected"), [
    ("TRUNCATE TABLE tasks", "mysql", ["deletes all rows from tasks"]),
    ("TRUNCATE tasks, projects", "postgresql", ["deletes all rows from tasks", "deletes all rows from projects"]),
    ("ALTER TABLE projects DROP CONSTRAINT uq_projects_slug", "postgresql",
     ["drops constraint uq_projects_slug on projects"]),
    ("ALTER TABLE tasks DROP FOREIGN KEY fk_tasks_project_id_projects", "mysql",
     ["drops foreign key fk_tasks_project_id_projects on tasks"]),
    ("DROP INDEX ix_tasks_title ON tasks", "mysql", ["drops index ix_tasks_title on tasks"]),
    ("ALTER TABLE projects ALTER COLUMN name SET NOT NULL", "postgresql", ["makes projects.name NOT NULL"]),
    ("DROP TYPE task_state", "postgresql", ["drops type task_state"]),
    ("this is not sql at all", "postgresql", []),
])
def test_destructive_sql_per_dialect(statement: str, dialect: str, expected: list[str]) -> None:
    assert destructive.destructive_sql(statement, dialect) == expected


def test_sqlite_batch_rebuild_reports_only_the_columns_it_does_not_copy() -> None:
    script = [
        "CREATE TABLE tasks (id INTEGER NOT NULL, title VARCHAR(200), legacy_flag BOOLEAN)",
        "CREATE TABLE _alembic_tmp_tasks (id INTEGER NOT NULL, title VARCHAR(200))",
        "INSERT INTO _alembic_tmp_tasks (id, title) SELECT tasks.id, tasks.title FROM tasks",
        "DROP TABLE tasks",
        "ALTER TABLE _alembic_tmp_tasks RENAME TO tasks",
    ]
    assert destructive.destructive_script(script, "sqlite") == [[], [], [], ["drops column tasks.legacy_flag"], []]
    # A rename inside the rebuild (notes -> details) copies every column: no loss at all.
    renamed = ["CREATE TABLE _alembic_tmp_tasks (id INTEGER, details TEXT)",
               "INSERT INTO _alembic_tmp_tasks (id, details) SELECT tasks.id, tasks.notes FROM tasks",
               "DROP TABLE tasks", "ALTER TABLE _alembic_tmp_tasks RENAME TO tasks"]
    assert destructive.destructive_script(renamed, "sqlite", tables={"tasks": ["id", "notes"]}) == [[], [], [], []]
    # Prior columns unknown: said so rather than passed over.
    assert destructive.destructive_script(renamed, "sqlite")[2] == [
        "rebuilds table tasks (columns it does not copy are lost)"]


# --- revisions ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def history():
    from conftest import FIXTURE_SETTINGS

    from project.core.conf import load_settings

    script = script_directory(alembic_config(load_settings(FIXTURE_SETTINGS)))
    return {rev.revision: rev for rev in script.walk_revisions()}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_fixture_history_is_classified_in_both_directions(history, dialect: str) -> None:
    classify = destructive.classify_revision
    assert classify(history["0008"], True, dialect) == ["drops column tasks.legacy_flag"]
    assert classify(history["0001"], False, dialect) == ["drops table tasks", "drops table projects"]
    assert classify(history["0003"], False, dialect) == ["narrows projects.name from VARCHAR(200) to VARCHAR(50)"]
    assert classify(history["0005"], False, dialect) == [
        "drops index ix_tasks_title on tasks", "drops unique constraint uq_projects_slug on projects"]
    # Widening, renaming and an update() construct destroy nothing.
    for rev in ("0001", "0002", "0003", "0004", "0005", "0006", "0007"):
        assert classify(history[rev], True, dialect) == [], rev
    assert classify(history["0004"], False, dialect) == []
    assert classify(history["0007"], False, dialect) == []


def test_postgresql_enum_type_drop_sent_through_the_bind_is_seen(history) -> None:
    assert destructive.classify_revision(history["0006"], False, "postgresql") == [
        "drops column tasks.state", "drops type task_state"]


def test_summary_groups_drops() -> None:
    assert destructive.summary(["drops table tasks", "drops table projects"]) == "drops tables tasks, projects"


@pytest.mark.parametrize(("old", "new", "narrows"), [
    (sa.String(200), sa.String(50), True),
    (sa.String(50), sa.String(200), False),
    (sa.Text(), sa.String(100), True),
    (sa.String(100), sa.Text(), False),
    (sa.BigInteger(), sa.Integer(), True),
    (sa.Integer(), sa.BigInteger(), False),
    (sa.Numeric(10, 2), sa.Numeric(8, 2), True),
    (sa.String(20), sa.Integer(), True),
    (None, sa.String(20), True),
])
def test_type_narrowing(old, new, narrows: bool) -> None:
    assert bool(destructive.type_narrows(old, new)) is narrows


def test_ops_in_batch_blocks_raw_sql_and_constructs(tmp_path) -> None:
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", upgrade="""
        op.execute("DELETE FROM tasks WHERE state = 'open'")
        op.execute(sa.text("TRUNCATE TABLE projects"))
        op.execute(sa.table("tasks", sa.column("id")).delete())
        op.execute(sa.table("tasks", sa.column("id")).update().values(id=1))
        with op.batch_alter_table("projects") as batch_op:
            batch_op.alter_column("name", existing_type=sa.String(200), nullable=False, existing_nullable=True)
            batch_op.alter_column("slug", existing_type=sa.Text(), type_=sa.String(20))
            batch_op.drop_constraint("uq_projects_slug", type_="unique")
    """, downgrade="""
        rows = op.get_bind().execute(sa.text("SELECT id FROM tasks")).fetchall()
    """)
    script = script_directory(alembic_config(_settings_for(copy)))
    rev = script.get_revision("0009")
    assert destructive.classify_revision(rev, True, "postgresql") == [
        "deletes rows from tasks",
        "deletes all rows from projects",
        "deletes all rows from tasks",
        "makes projects.name NOT NULL",
        "narrows projects.slug from TEXT to VARCHAR(20)",
        "drops unique constraint uq_projects_slug on projects",
    ]
    # A revision that reads data cannot be inspected offline: its own answer, not counted as destructive.
    assert destructive.classify_revision(rev, False, "postgresql") == []
    verdict = destructive.assess_revision(rev, False, "postgresql")
    assert verdict.uninspectable is not None and verdict.uninspectable.startswith(
        "its downgrade() cannot run without a database")
    assert not verdict.no_downgrade


def _settings_for(copy: MigrationsCopy):
    import importlib
    import sys

    sys.path.insert(0, copy.pythonpath)
    try:
        from project.core.conf import Settings

        return Settings(importlib.import_module(copy.module), copy.module)
    finally:
        sys.path.remove(copy.pythonpath)


# --- plans and CONFIRM_DESTRUCTIVE, on every engine -------------------------------------------------


def _version(db_url: str) -> tuple[str, ...]:
    from project.core.db import create_engine_for

    engine = create_engine_for(db_url)
    try:
        with engine.connect() as connection:
            return current_heads(connection)
    finally:
        engine.dispose()


def _tables(db_url: str) -> set[str]:
    from project.core.db import create_engine_for

    engine = create_engine_for(db_url)
    try:
        with engine.connect() as connection:
            return set(sa.inspect(connection).get_table_names())
    finally:
        engine.dispose()


def test_plans_mark_destructive_steps(fixture_manage, db_url: str) -> None:
    # On an empty database 0008 drops a column that 0001, earlier in the same plan, creates: nothing is lost
    # there, and the plan says so instead of DESTRUCTIVE (tests/test_policy_database.py has more).
    plan = fixture_manage("migrate", "--plan", in_process=True)
    assert plan.returncode == 0, plan.stderr
    lines = plan.stdout.splitlines()
    index = lines.index("  Apply 0008 Drop tasks.legacy_flag")
    assert lines[index + 1] == ("  NOTHING LOST: drops column tasks.legacy_flag (0001 creates tasks earlier in this "
                                "plan)")
    assert sum("DESTRUCTIVE" in line for line in lines) == 0
    planned = fixture_manage("showmigrations", "--plan", in_process=True).stdout
    assert "NOTHING LOST: drops column tasks.legacy_flag" in planned

    # At 0007 the database holds tasks.legacy_flag: dropping it destroys data.
    assert fixture_manage("migrate", "0007", "-v0", in_process=True).returncode == 0
    lines = fixture_manage("migrate", "--plan", in_process=True).stdout.splitlines()
    index = lines.index("  Apply 0008 Drop tasks.legacy_flag")
    assert lines[index + 1] == "  DESTRUCTIVE: drops column tasks.legacy_flag"
    assert sum("DESTRUCTIVE" in line for line in lines) == 1

    shown = fixture_manage("showmigrations", "--plan", in_process=True)
    assert shown.returncode == 0, shown.stderr
    assert "DESTRUCTIVE: drops column tasks.legacy_flag" in shown.stdout

    assert fixture_manage("migrate", "-v0", in_process=True).returncode == 0
    back = fixture_manage("migrate", "zero", "--plan", in_process=True)
    assert "  DESTRUCTIVE: drops tables tasks, projects" in back.stdout.splitlines()
    assert "  DESTRUCTIVE: narrows projects.name from VARCHAR(200) to VARCHAR(50)" in back.stdout.splitlines()
    # Nothing pending: showmigrations marks only what is still to apply.
    assert "DESTRUCTIVE" not in fixture_manage("showmigrations", "--plan", in_process=True).stdout


def test_confirm_destructive_refuses_before_touching_anything(fixture_manage, db_url: str) -> None:
    # Up to the last harmless revision is fine, even under CONFIRM_DESTRUCTIVE.
    assert fixture_manage("migrate", "0007", "-v0", env={"CONFIRM_DESTRUCTIVE": "1"}, in_process=True).returncode == 0
    before = _tables(db_url)
    refused = fixture_manage("migrate", env={"CONFIRM_DESTRUCTIVE": "1"}, in_process=True)
    line = one_clean_line(refused)
    assert "0008 drops column tasks.legacy_flag" in line and "--allow-destructive" in line
    assert refused.returncode == 1
    assert _tables(db_url) == before and _version(db_url) == ("0007",)
    assert "legacy_flag" in {c["name"] for c in _columns(db_url, "tasks")}

    # Then the flag lets the drop through.
    ok = fixture_manage("migrate", "--allow-destructive", env={"CONFIRM_DESTRUCTIVE": "1"}, in_process=True)
    assert ok.returncode == 0, ok.stderr
    assert _version(db_url) == ("0008",)

    # Downgrades count too: unapplying 0006 drops tasks.state.
    down = fixture_manage("migrate", "0005", env={"CONFIRM_DESTRUCTIVE": "1"}, in_process=True)
    line = one_clean_line(down)
    assert "unapply 0006 drops column tasks.state" in line
    assert _version(db_url) == ("0008",)
    assert "state" in {c["name"] for c in _columns(db_url, "tasks")}


def _columns(db_url: str, table: str) -> list[dict]:
    from project.core.db import create_engine_for

    engine = create_engine_for(db_url)
    try:
        with engine.connect() as connection:
            return sa.inspect(connection).get_columns(table)
    finally:
        engine.dispose()


def test_prod_settings_confirm_by_default(fixture_manage, db_url: str) -> None:
    from conftest import run_fixture_manage

    assert fixture_manage("migrate", "0007", "-v0", in_process=True).returncode == 0
    result = run_fixture_manage("migrate", "--settings=fixture_app.settings.prod", env={"PROD_DATABASE_URL": db_url},
                                in_process=True)
    assert "Refusing to run destructive steps" in one_clean_line(result)
    assert _version(db_url) == ("0007",)


def test_sql_that_cannot_be_read_makes_the_revision_uninspectable(tmp_path) -> None:
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", upgrade="""
        op.execute("UPDATE tasks SET title = 'x' WHERE (")
    """, downgrade="""
        op.execute("DO $$ BEGIN DELETE FROM tasks; END $$")
    """)
    rev = script_directory(alembic_config(_settings_for(copy))).get_revision("0009")
    up = destructive.assess_revision(rev, True, "postgresql")
    assert up.destroys == [] and up.uninspectable is not None
    assert up.uninspectable.startswith("its upgrade() runs SQL that cannot be read (ParseError: "), up.uninspectable
    down = destructive.assess_revision(rev, False, "postgresql")
    assert down.uninspectable == ("its downgrade() runs a DO block, whose PL/pgSQL cannot be inspected "
                                  "(DO $$ BEGIN DELETE FROM tasks; END $$)")
    # The statement-level reader never raises either.
    assert destructive.destructive_sql("DO $$\nBEGIN\n  DROP TABLE x;", "postgresql") == []
