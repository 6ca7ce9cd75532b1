"""A column rename answered "in two phases" (issue 23; docs/phases.md, "Rename a column without breaking running
code"): from one makemigrations run on a real pseudo-terminal, an expand revision (the new column, the old one
made nullable, triggers keeping both in step), an expand revision with the backfill alone, and the contract
revision (the triggers and the old column dropped, the new column as the model has it). The revisions run on the
three engines with rows in them (upgrade, downgrade to base, upgrade), `check` finds nothing to say, and the
triggers copy writes made through either column."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_questioner import Project, execute, inspect, rows

TASKS_RENAMED = '''
sa.Table("tasks", Base.metadata,
         sa.Column("id", sa.Integer, primary_key=True),
         sa.Column("name", sa.String(100), nullable=False, index=True))
'''
RENAME = "Was tasks.title renamed to tasks.name (a String)? [y/N] "
HOW = "How should tasks.title become tasks.name?"


def _phased(project: Project) -> tuple[int, str]:
    project.models(TASKS_RENAMED)
    return project.makemigrations_tty(answers=[(RENAME, "y"), ("Select an option: ", "2")])


def _ids(project: Project) -> list[str]:
    return [path.name.split("_", 2)[0] + "_" + path.name.split("_", 2)[1] for path in project.written()]


def _columns(db_url: str) -> dict[str, bool]:
    return {c["name"]: c["nullable"] for c in inspect(db_url, lambda i: i.get_columns("tasks"))}


def test_rename_in_two_phases_on_three_engines(tmp_path: Path, db_url: str) -> None:
    project = Project(tmp_path)
    project.migrate(db_url, "0001")
    execute(db_url, "INSERT INTO tasks (id, title) VALUES (1, 'write tests'), (2, 'ship it')")

    status, screen = _phased(project)
    assert status == 0, screen
    assert "1) In one release" in screen and "2) In two phases" in screen, screen
    files = project.written()
    assert len(files) == 3, screen
    phases = [next(line for line in f.read_text().splitlines() if line.startswith("phase:")) for f in files]
    assert phases == ["phase: str = 'expand'"] * 2 + ["phase: str = 'contract'"], phases
    expand, backfill, contract = (f.read_text() for f in files)
    assert "sync_columns('tasks', 'title', 'name')" in expand and "nullable=True" in expand, expand
    assert "backfill('tasks', {'name': 'title'}" in backfill, backfill
    assert "drop_column_sync('tasks', 'title', 'name')" in contract and "drop_column('title')" in contract
    assert "create_index(batch_op.f('ix_tasks_name')" in contract, contract
    check = project.manage("check")
    assert check.returncode == 0, check.stdout + check.stderr
    first, second, third = _ids(project)

    # The expand phase, as `migrate` applies it before the new code starts: the rows written before it are
    # backfilled, the old column takes NULL (the new code does not write it), the triggers copy every write.
    project.migrate(db_url, second)
    assert _columns(db_url) == {"id": False, "title": True, "name": True}
    assert rows(db_url, "SELECT id, title, name FROM tasks ORDER BY id") == [
        (1, "write tests", "write tests"), (2, "ship it", "ship it")]
    execute(db_url, "INSERT INTO tasks (id, title) VALUES (3, 'old code')")  # release 1: the old column only
    execute(db_url, "INSERT INTO tasks (id, name) VALUES (4, 'new code')")  # release 2: the new column only
    execute(db_url, "UPDATE tasks SET title = 'old edit' WHERE id = 1")
    execute(db_url, "UPDATE tasks SET name = 'new edit' WHERE id = 2")
    execute(db_url, "UPDATE tasks SET name = NULL WHERE id = 4")  # NULL is a value too: copied across
    execute(db_url, "UPDATE tasks SET name = 'back' WHERE id = 4")
    assert rows(db_url, "SELECT id, title, name FROM tasks ORDER BY id") == [
        (1, "old edit", "old edit"), (2, "new edit", "new edit"), (3, "old code", "old code"), (4, "back", "back")]

    # The contract phase: the new column is the model's, with every value.
    project.migrate(db_url)
    assert _columns(db_url) == {"id": False, "name": False}
    execute(db_url, "INSERT INTO tasks (id, name) VALUES (5, 'after')")  # no trigger left reading title
    assert rows(db_url, "SELECT id, name FROM tasks ORDER BY id") == [
        (1, "old edit"), (2, "new edit"), (3, "old code"), (4, "back"), (5, "after")]

    # Down to before the rename: the old column back, NOT NULL, with the values (and while the triggers are
    # back, in step again).
    project.migrate(db_url, second)
    execute(db_url, "INSERT INTO tasks (id, name) VALUES (6, 'down')")
    assert rows(db_url, "SELECT id, title FROM tasks WHERE id IN (5, 6) ORDER BY id") == [(5, "after"), (6, "down")]
    project.migrate(db_url, "0001")
    assert _columns(db_url) == {"id": False, "title": False}
    assert rows(db_url, "SELECT id, title FROM tasks ORDER BY id")[:2] == [(1, "old edit"), (2, "new edit")]
    project.migrate(db_url, "zero")
    project.migrate(db_url)
    assert _columns(db_url) == {"id": False, "name": False}
    assert first < second < third


@pytest.mark.parametrize("dialect", ["sqlite", "mysql", "postgresql"])
def test_rename_in_two_phases_renders_offline(tmp_path: Path, dialect: str) -> None:
    """`migrate --sql`: the triggers as each engine writes them, in the expand script; dropped in the contract's."""
    project = Project(tmp_path)
    status, screen = _phased(project)
    assert status == 0, screen
    url = {"sqlite": f"sqlite:///{tmp_path / 'offline.db'}", "mysql": "mysql+pymysql://u:p@127.0.0.1:1/db",
           "postgresql": "postgresql+psycopg://u:p@127.0.0.1:1/db"}[dialect]
    scripts = {}
    for phase in ("expand", "contract"):
        result = project.manage("migrate", "--sql", "0001:head", "--phase", phase, db_url=url)
        assert result.returncode == 0, result.stdout + result.stderr
        scripts[phase] = result.stdout
    assert "CREATE TRIGGER" in scripts["expand"] and "DROP TRIGGER" not in scripts["expand"], scripts["expand"]
    assert "DROP TRIGGER" in scripts["contract"] and "CREATE TRIGGER" not in scripts["contract"]
    if dialect == "postgresql":
        assert "CREATE FUNCTION" in scripts["expand"] and "DROP FUNCTION" in scripts["contract"]


def test_one_release_is_a_rename(tmp_path: Path) -> None:
    """Answer 1: the rename as before, one contract revision."""
    project = Project(tmp_path)
    project.models(TASKS_RENAMED)
    status, screen = project.makemigrations_tty(answers=[(RENAME, "y"), ("Select an option: ", "1")])
    assert status == 0, screen
    [written] = project.written()
    source = written.read_text()
    assert "new_column_name='name'" in source and "sync_columns" not in source, source
    assert "phase: str = 'contract'" in source


def test_two_phases_not_offered_for_a_column_with_a_default(tmp_path: Path) -> None:
    """An INSERT naming one of two columns with defaults gets the other's default, which no trigger can tell
    from a value written: only the rename is offered."""
    project = Project(tmp_path)
    project.models('''
        sa.Table("tasks", Base.metadata,
                 sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("name", sa.String(100), nullable=False, index=True, server_default="x"))
    ''')
    status, screen = project.makemigrations_tty(answers=[(RENAME, "y")])
    assert status == 0, screen
    assert HOW not in screen
    assert "new_column_name='name'" in project.written()[0].read_text()


def test_two_phases_not_offered_for_a_rename_that_changes_the_type(tmp_path: Path) -> None:
    """String(100) renamed to a Text: the triggers would copy the new code's long values into the old column,
    where they do not fit (and the request writing one would fail): only the rename is offered."""
    project = Project(tmp_path)
    project.models('''
        sa.Table("tasks", Base.metadata,
                 sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("name", sa.Text, nullable=False, index=True))
    ''')
    status, screen = project.makemigrations_tty(answers=[("Was tasks.title renamed to tasks.name", "y")])
    assert status == 0, screen
    assert "Was tasks.title renamed to tasks.name" in screen and HOW not in screen, screen
    assert "new_column_name='name'" in project.written()[0].read_text()


def test_dry_run_shows_the_three_revisions_and_writes_nothing(tmp_path: Path) -> None:
    project = Project(tmp_path)
    project.models(TASKS_RENAMED)
    status, screen = project.makemigrations_tty("--dry-run", answers=[(RENAME, "y"), ("Select an option: ", "2")])
    assert status == 0, screen
    assert project.written() == []
    shown = [line.split(":", 1)[0] for line in screen.splitlines() if line.startswith("Would write ")]
    assert [line.split()[2][:4] for line in shown] == ["0002", "0003", "0004"], screen
    assert screen.index("sync_columns(") < screen.index("backfill(") < screen.index("drop_column_sync("), screen


def test_other_changes_beside_a_phased_rename_are_asked_about(tmp_path: Path) -> None:
    """A new table beside the phased rename: the contract revision would create (expand) and drop (contract),
    so the phase question comes; Quit writes nothing, not even the expand revisions."""
    project = Project(tmp_path)
    project.models(TASKS_RENAMED + '''
sa.Table("tags", Base.metadata, sa.Column("id", sa.Integer, primary_key=True))
''')
    status, screen = project.makemigrations_tty(answers=[
        (RENAME, "y"), ("Select an option: ", "2"), ("Select an option: ", "2")])
    assert status == 1, screen
    assert "This revision breaks the code running before it and adds what the new code needs" in screen, screen
    assert project.written() == []
