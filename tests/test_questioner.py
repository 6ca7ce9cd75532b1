"""makemigrations asks like Django's questioner: renames, one-off defaults for NOT NULL columns, named enum
types, names that are the same on every engine. Each test has its own models module and history in tmp_path;
the questions are answered through a real pseudo-terminal (pexpect), and the generated files then migrate real
databases with rows in them (SQLite, MariaDB, PostgreSQL)."""

from __future__ import annotations

import io
import os
import re
import shutil
import sys
import textwrap
import uuid
from pathlib import Path

import pexpect
import pytest
import sqlalchemy as sa
from conftest import ROOT, run_manage
from migcopy import one_clean_line

MODELS_HEADER = '''
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

'''

# The history every test starts from: tasks(id, title) with an index on title.
FIRST_REVISION = '''"""create tasks

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )
    with op.batch_alter_table("tasks") as batch_op:
        batch_op.create_index(batch_op.f("ix_tasks_title"), ["title"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasks_title"))
    op.drop_table("tasks")
'''

TASKS_V1 = '''
sa.Table("tasks", Base.metadata,
         sa.Column("id", sa.Integer, primary_key=True),
         sa.Column("title", sa.String(100), nullable=False, index=True))
'''


class Project:
    """A settings module, a models module and a history of their own, on PYTHONPATH for manage.py."""

    def __init__(self, tmp_path: Path):
        self.dir = tmp_path
        migrations = tmp_path / "migrations"
        (migrations / "versions").mkdir(parents=True)
        for name in ("env.py", "script.py.mako"):
            shutil.copy(ROOT / "migrations" / name, migrations / name)
        (migrations / "versions" / "0001_create_tasks.py").write_text(FIRST_REVISION)
        self.versions = migrations / "versions"
        tag = uuid.uuid4().hex[:8]
        self.models_module = f"quest_models_{tag}"
        self.settings_module = f"quest_settings_{tag}"
        (tmp_path / f"{self.settings_module}.py").write_text(
            "from settings.dev import *  # noqa\n"
            f"MIGRATIONS_DIR = {str(migrations)!r}\n"
            f"TARGET_METADATA = '{self.models_module}:Base.metadata'\n"
        )
        self.models(TASKS_V1)

    def models(self, body: str, header: str = MODELS_HEADER) -> None:
        (self.dir / f"{self.models_module}.py").write_text(header + textwrap.dedent(body))

    def env(self, db_url: str | None = None) -> dict[str, str]:
        env = {"SETTINGS_MODULE": self.settings_module, "PYTHONPATH": str(self.dir), "NO_COLOR": "1"}
        if db_url:
            env["DEV_DATABASE_URL"] = db_url
        return env

    def manage(self, *args: str, db_url: str | None = None):
        # In process (conftest.manage_in_process): what is asked on a terminal goes through makemigrations_tty.
        return run_manage(*args, env=self.env(db_url), in_process=True)

    def migrate(self, db_url: str, target: str = "head") -> None:
        result = self.manage("migrate", target, "-v", "0", db_url=db_url)
        assert result.returncode == 0, result.stdout + result.stderr

    def written(self) -> list[Path]:
        return sorted(p for p in self.versions.glob("*.py") if not p.name.startswith("0001_"))

    def makemigrations_tty(self, *args: str, answers: list[tuple[str, str]]) -> tuple[int, str]:
        """makemigrations on a real pseudo-terminal: expect each prompt (a literal string), then type its answer.
        Returns the exit status and everything the terminal showed."""
        child = pexpect.spawn(sys.executable, [str(ROOT / "manage.py"), "makemigrations", *args], cwd=str(ROOT),
                              env={**os.environ, **self.env(), "TERM": "dumb"}, encoding="utf-8", timeout=90)
        child.logfile_read = screen = io.StringIO()
        try:
            for prompt, answer in answers:
                child.expect_exact(prompt)
                child.sendline(answer)
            child.expect(pexpect.EOF)
        finally:
            child.close()
        return child.exitstatus, screen.getvalue()


def rows(db_url: str, sql: str) -> list[tuple]:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(sql))]
    finally:
        engine.dispose()


def execute(db_url: str, sql: str) -> None:
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(sql))
    finally:
        engine.dispose()


def inspect(db_url: str, fn):
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as connection:
            return fn(sa.inspect(connection))
    finally:
        engine.dispose()


def enum_types(db_url: str) -> set[str]:
    """Named enum types in the database: PostgreSQL's CREATE TYPE; none elsewhere."""
    if not db_url.startswith("postgresql"):
        return set()
    return {e["name"] for e in inspect(db_url, lambda i: i.get_enums())}


def up_zero_up(project: Project, db_url: str) -> None:
    project.migrate(db_url, "zero")
    assert enum_types(db_url) == set(), "the downgrade left a type behind"
    project.migrate(db_url)


# --- renames and NOT NULL columns, answered on a terminal ---------------------------------------------------


def test_rename_and_one_off_default_keep_rows(tmp_path: Path, db_url: str) -> None:
    project = Project(tmp_path)
    project.migrate(db_url, "0001")
    execute(db_url, "INSERT INTO tasks (id, title) VALUES (1, 'write tests'), (2, 'ship it')")

    # title becomes name (and Text), priority is NOT NULL without a default, status a NOT NULL enum with one.
    project.models('''
        sa.Table("tasks", Base.metadata,
                 sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("name", sa.Text, nullable=False),
                 sa.Column("priority", sa.Integer, nullable=False),
                 sa.Column("urgent", sa.Boolean, nullable=False),
                 sa.Column("status", sa.Enum("todo", "done", name="task_status"), nullable=False,
                           server_default="todo"))
    ''')
    status, screen = project.makemigrations_tty("-m", "rename and priority", answers=[
        ("Was tasks.title renamed to tasks.name (a Text)? [y/N] ", "y"),
        # String(100) to Text: a rename only (two phases are not offered across a type change), no question
        ("Select an option: ", "1"),
        (">>> ", "'high'"),  # not an integer: asked again
        (">>> ", "3"),
        ("Select an option: ", "1"),
        (">>> ", "True"),
        ("Please select a fix:", ""), ("Select an option: ", "1"),  # renames and adds: no phase suits it
    ])
    assert status == 0, screen
    assert "the NOT NULL column tasks.priority" in screen
    assert "phase" not in project.written()[0].read_text()
    assert "Invalid input: 'high' does not fit a Integer column" in screen
    assert "How should tasks.title become tasks.name?" not in screen  # a type change: the rename only
    [path] = project.written()
    source = path.read_text()
    assert "new_column_name='name'" in source
    assert "drop_column('title')" not in source
    assert "server_default='3'" in source

    project.migrate(db_url)
    assert rows(db_url, "SELECT id, name, priority, urgent, status FROM tasks ORDER BY id") == [
        (1, "write tests", 3, True, "todo"), (2, "ship it", 3, True, "todo")]
    columns = {c["name"]: c for c in inspect(db_url, lambda i: i.get_columns("tasks"))}
    for name in ("priority", "urgent"):
        assert columns[name]["nullable"] is False
        assert columns[name]["default"] is None, f"the one-off default of {name} lingers"
    # A new row must give priority itself now (the same row with a priority is accepted).
    execute(db_url, "INSERT INTO tasks (id, name, priority, urgent) VALUES (3, 'with priority', 4, '0')")
    with pytest.raises(sa.exc.DatabaseError):
        execute(db_url, "INSERT INTO tasks (id, name, urgent) VALUES (4, 'no priority', '0')")
    execute(db_url, "DELETE FROM tasks WHERE id = 3")
    assert project.manage("makemigrations", "--check").returncode == 0

    up_zero_up(project, db_url)
    assert rows(db_url, "SELECT count(*) FROM tasks") == [(0,)]


def test_nullable_column_made_not_null_fills_its_null_rows(tmp_path: Path, db_url: str) -> None:
    """Django's ask_not_null_alteration: a nullable column becomes NOT NULL while rows hold NULL there. The
    one-off default fills those rows (and only those) before the column changes; without it every engine refuses."""
    project = Project(tmp_path)
    project.models(TASKS_V1 + 'sa.Table("notes", Base.metadata, sa.Column("id", sa.Integer, primary_key=True), '
                   'sa.Column("body", sa.String(20)), sa.Column("weight", sa.Integer))\n')
    project.makemigrations_tty("-m", "notes", answers=[])
    project.migrate(db_url)
    execute(db_url, "INSERT INTO notes (id, body, weight) VALUES (1, 'kept', 7), (2, NULL, NULL)")
    project.models(TASKS_V1 + 'sa.Table("notes", Base.metadata, sa.Column("id", sa.Integer, primary_key=True), '
                   'sa.Column("body", sa.String(20), nullable=False), '
                   'sa.Column("weight", sa.Integer, nullable=False))\n')
    status, screen = project.makemigrations_tty("-m", "required", answers=[
        ("Select an option: ", "1"),
        (">>> ", "'empty'"),
        ("Select an option: ", "2"),  # weight: ignored for now, so the migration meets the NULL row
    ])
    assert status == 0, screen
    assert "change the nullable column notes.body to NOT NULL" in screen, screen
    [_, path] = project.written()
    upgrade = path.read_text().split("def downgrade")[0]
    assert "is_(None)" in upgrade and "'empty'" in upgrade
    refused = project.manage("migrate", "-v", "0", db_url=db_url)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    if db_url.startswith("mysql"):  # no transactional DDL: what ran is named, and it is kept
        assert "these statements of it already ran: UPDATE notes SET `body`='empty'" in refused.stderr
        filled = "empty"
    else:
        filled = None
    assert rows(db_url, "SELECT id, body, weight FROM notes ORDER BY id") == [(1, "kept", 7), (2, filled, None)]
    execute(db_url, "UPDATE notes SET weight = 0 WHERE weight IS NULL")  # the data migration the user chose to write
    project.migrate(db_url)
    assert rows(db_url, "SELECT id, body, weight FROM notes ORDER BY id") == [(1, "kept", 7), (2, "empty", 0)]
    columns = {c["name"]: c for c in inspect(db_url, lambda i: i.get_columns("notes"))}
    assert columns["body"]["nullable"] is False and columns["body"]["default"] is None
    assert project.manage("makemigrations", "--check").returncode == 0
    [notes] = re.findall(r"^revision: str = '([^']+)'", project.written()[0].read_text(), re.M)
    project.migrate(db_url, notes)
    assert rows(db_url, "SELECT id, body FROM notes ORDER BY id") == [(1, "kept"), (2, "empty")]


def test_rename_table_keeps_rows(tmp_path: Path, db_url: str) -> None:
    project = Project(tmp_path)
    project.migrate(db_url, "0001")
    execute(db_url, "INSERT INTO tasks (id, title) VALUES (1, 'kept')")
    project.models('''
        sa.Table("todos", Base.metadata,
                 sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("title", sa.String(100), nullable=False, index=True))
    ''')
    status, screen = project.makemigrations_tty("-m", "rename tasks", answers=[
        ("Was the table tasks renamed to todos? [y/N] ", "yes"),
    ])
    assert status == 0, screen
    source = project.written()[0].read_text()
    assert "op.rename_table('tasks', 'todos')" in source
    assert "op.drop_table('tasks')" not in source.split("def downgrade")[0]

    project.migrate(db_url)
    assert rows(db_url, "SELECT id, title FROM todos") == [(1, "kept")]
    indexes = {i["name"] for i in inspect(db_url, lambda i: i.get_indexes("todos"))}
    assert "ix_todos_title" in indexes
    assert project.manage("makemigrations", "--check").returncode == 0
    project.migrate(db_url, "0001")
    assert rows(db_url, "SELECT id, title FROM tasks") == [(1, "kept")]


def test_phase_asked_when_the_operations_do_not_say_it(tmp_path: Path) -> None:
    """A revision whose raw SQL cannot be read gets the phase the user gives; one that both adds (expand) and
    drops (contract) gets none, or is split by the user (docs/phases.md)."""
    project = Project(tmp_path)
    project.models(TASKS_V1 + 'sa.Table("notes", Base.metadata, sa.Column("id", sa.Integer, primary_key=True))\n')
    status, screen = project.makemigrations_tty("-m", "notes", answers=[])  # a new table: expand, not asked
    assert status == 0 and "(phase: expand)" in screen, screen

    project.models('sa.Table("notes", Base.metadata, sa.Column("id", sa.Integer, primary_key=True))\n'
                   'sa.Table("tags", Base.metadata, sa.Column("id", sa.Integer, primary_key=True))\n')
    status, screen = project.makemigrations_tty("-m", "tags instead of tasks", answers=[
        ("Select an option: ", "3"),  # not a choice: asked again
        ("Please select a valid option: ", "2"),
    ])
    assert status == 1 and "Quit: change the models for the additions" in screen, screen
    assert ("This revision breaks the code running before it and adds what the new code needs: it creates table "
            "tags (expand) and drops table tasks (contract).") in " ".join(screen.split()), screen
    assert len(project.written()) == 1

    status, screen = project.makemigrations_tty("-m", "tags instead of tasks", answers=[("Select an option: ", "1")])
    assert status == 0, screen
    assert "phase" not in project.written()[1].read_text()


def test_quit_writes_nothing(tmp_path: Path) -> None:
    project = Project(tmp_path)
    project.models('''
        sa.Table("tasks", Base.metadata,
                 sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("title", sa.String(100), nullable=False, index=True),
                 sa.Column("priority", sa.Integer, nullable=False))
    ''')
    status, screen = project.makemigrations_tty(answers=[("Select an option: ", "2")])
    assert status == 1, screen
    assert "CommandError: Quit: give tasks.priority a server_default in the model" in screen
    assert project.written() == []


def test_no_terminal_and_noinput_never_ask(tmp_path: Path) -> None:
    project = Project(tmp_path)
    project.models('''
        sa.Table("tasks", Base.metadata,
                 sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("name", sa.String(100), nullable=True))
    ''')
    # On a terminal, --noinput asks nothing: drop + add, as Django does.
    status, screen = project.makemigrations_tty("--noinput", answers=[])
    assert status == 0, screen
    assert "[y/N]" not in screen
    source = project.written()[0].read_text()
    assert "batch_op.drop_column('title')" in source
    assert "batch_op.add_column(sa.Column('name'" in source

    # Without a terminal (here: pipes), the same without the flag; a NOT NULL column is one clear line.
    project.written()[0].unlink()
    project.models('''
        sa.Table("tasks", Base.metadata,
                 sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("title", sa.String(100), nullable=False, index=True),
                 sa.Column("priority", sa.Integer, nullable=False))
    ''')
    line = one_clean_line(project.manage("makemigrations"))
    assert line == ("CommandError: Cannot add the NOT NULL column tasks.priority without a default: the table's "
                    "existing rows need a value. Give the column a server_default in the model, or run "
                    "makemigrations on a terminal to give a one-off default.")
    assert project.written() == []


def test_one_off_defaults_fit_the_column() -> None:
    from project.core.authoring.questioner import sql_default

    assert sql_default(True, sa.Boolean()) == "1"
    assert sql_default(0, sa.Integer()) == "0"
    assert sql_default(1.5, sa.Numeric(10, 2)) == "1.5"
    assert sql_default("draft", sa.Enum("draft", "done", name="s")) == "draft"
    assert sql_default("2024-01-31", sa.Date()) == "2024-01-31"
    for value, type_ in [("x", sa.Integer()), (True, sa.Integer()), ("maybe", sa.Boolean()),
                         ("gone", sa.Enum("draft", "done", name="s")), (None, sa.String(10)), (3, sa.String(10))]:
        with pytest.raises(ValueError):
            sql_default(value, type_)


# --- named enum types ----------------------------------------------------------------------------------------


ENUM_MODELS = TASKS_V1 + '''
sa.Table("tasks", Base.metadata,
         sa.Column("state", sa.Enum("open", "closed", name="task_state"), nullable=True),
         extend_existing=True)
sa.Table("labels", Base.metadata,
         sa.Column("id", sa.Integer, primary_key=True),
         sa.Column("colour", sa.Enum("red", "green", name="label_colour"), nullable=False))
'''


def test_enum_types_up_zero_up(tmp_path: Path, db_url: str) -> None:
    project = Project(tmp_path)
    project.migrate(db_url, "0001")
    execute(db_url, "INSERT INTO tasks (id, title) VALUES (1, 'a')")
    project.models(ENUM_MODELS)
    result = project.manage("makemigrations", "-m", "enums")
    assert result.returncode == 0, result.stderr
    source = project.written()[0].read_text()
    upgrade, downgrade = source.split("def downgrade")
    assert "sa.Enum('open', 'closed', name='task_state').create(op.get_bind(), checkfirst=True)" in upgrade
    assert "sa.Enum(name='task_state').drop(op.get_bind(), checkfirst=True)" in downgrade
    assert "sa.Enum(name='label_colour').drop(op.get_bind(), checkfirst=True)" in downgrade

    project.migrate(db_url)
    if db_url.startswith("postgresql"):
        assert enum_types(db_url) == {"task_state", "label_colour"}
    execute(db_url, "INSERT INTO labels (id, colour) VALUES (1, 'red')")
    execute(db_url, "UPDATE tasks SET state = 'closed'")
    project.migrate(db_url, "0001")
    assert enum_types(db_url) == set()
    assert rows(db_url, "SELECT id, title FROM tasks") == [(1, "a")]
    up_zero_up(project, db_url)
    assert project.manage("makemigrations", "--check").returncode == 0


def test_dropped_enum_column_and_table_drop_their_types(tmp_path: Path, db_url: str) -> None:
    project = Project(tmp_path)
    project.models(ENUM_MODELS)
    assert project.manage("makemigrations", "-m", "enums").returncode == 0
    project.migrate(db_url)
    execute(db_url, "INSERT INTO tasks (id, title, state) VALUES (1, 'a', 'open')")

    project.models(TASKS_V1)  # state and labels gone: the scratch database shows them as VARCHAR only
    result = project.manage("makemigrations", "--noinput", "-m", "drop enums")
    assert result.returncode == 0, result.stderr
    source = project.written()[-1].read_text()
    upgrade, downgrade = source.split("def downgrade")
    assert "sa.Enum(name='task_state').drop(op.get_bind(), checkfirst=True)" in upgrade
    assert "sa.Enum(name='label_colour').drop(op.get_bind(), checkfirst=True)" in upgrade
    assert "sa.Column('state', sa.Enum('open', 'closed', name='task_state')" in downgrade
    assert "sa.Enum('open', 'closed', name='task_state').create(op.get_bind(), checkfirst=True)" in downgrade

    project.migrate(db_url)
    assert enum_types(db_url) == set(), "the upgrade left a type behind"
    project.migrate(db_url, "0002")  # back to the enum columns: the types come back with them
    if db_url.startswith("postgresql"):
        assert enum_types(db_url) == {"task_state", "label_colour"}
    execute(db_url, "UPDATE tasks SET state = 'closed'")
    execute(db_url, "INSERT INTO labels (id, colour) VALUES (1, 'green')")
    up_zero_up(project, db_url)
    assert project.manage("makemigrations", "--check").returncode == 0


# --- names -----------------------------------------------------------------------------------------------------

LONG_TABLE = "project_milestone_assignments_for_every_team_member"
NAMED_MODELS = TASKS_V1 + textwrap.dedent(f'''
    sa.Table("{LONG_TABLE}", Base.metadata,
             sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("project_id", sa.Integer, nullable=False),
             sa.Column("title", sa.String(100), nullable=False),
             sa.Column("priority", sa.Integer, nullable=False),
             sa.UniqueConstraint("project_id", "title"),
             sa.UniqueConstraint("project_id", "priority"),
             sa.Index(None, "project_id", "title", "priority"))
''')


def test_long_and_multi_column_names_same_everywhere(tmp_path: Path, db_url: str) -> None:
    project = Project(tmp_path)
    project.models(NAMED_MODELS)
    result = project.manage("makemigrations", "-m", "milestones")
    assert result.returncode == 0, result.stderr
    source = project.written()[0].read_text()

    project.migrate(db_url)
    uniques = {u["name"] for u in inspect(db_url, lambda i: i.get_unique_constraints(LONG_TABLE))}
    indexes = {i["name"] for i in inspect(db_url, lambda i: i.get_indexes(LONG_TABLE))} - uniques
    assert len(uniques) == 2 and len(indexes) == 1
    for name in uniques | indexes:
        assert len(name) <= 63
        assert f"f('{name}')" in source, f"{name}: the database's name is not the file's"
    full = f"uq_{LONG_TABLE}_project_id_title"
    assert full[:55] in {n[:55] for n in uniques} and len(full) > 63
    assert project.manage("makemigrations", "--check").returncode == 0
    up_zero_up(project, db_url)


PLAIN_ALEMBIC_REVISION = '''"""milestones, as plain Alembic writes it: op.f() with the whole names

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "{table}",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_{table}")),
        sa.UniqueConstraint("project_id", "title", name=op.f("uq_{table}_project_id_title")),
        sa.UniqueConstraint("project_id", "priority", name=op.f("uq_{table}_project_id_priority")),
    )
    op.create_index(op.f("ix_{table}_project_id_title_priority"), "{table}", ["project_id", "title", "priority"])


def downgrade() -> None:
    op.drop_table("{table}")
'''


def test_whole_long_names_of_a_plain_alembic_history_are_no_change(tmp_path: Path) -> None:
    project = Project(tmp_path)
    project.models(NAMED_MODELS)
    source = PLAIN_ALEMBIC_REVISION.format(table=LONG_TABLE)
    assert len(f"uq_{LONG_TABLE}_project_id_title") > 63
    (project.versions / "0002_milestones.py").write_text(source)
    result = project.manage("makemigrations", "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "No changes detected"


def test_same_models_same_file(tmp_path: Path) -> None:
    project = Project(tmp_path)
    project.models(NAMED_MODELS)
    texts = []
    for _ in range(2):
        result = project.manage("makemigrations", "--noinput", "-m", "milestones")
        assert result.returncode == 0, result.stderr
        [path] = project.written()
        texts.append([line for line in path.read_text().splitlines() if not line.startswith("Create Date")])
        path.unlink()
    assert texts[0] == texts[1]


def test_name_collision_refused(tmp_path: Path) -> None:
    project = Project(tmp_path)
    # The first column only: (project_id, title) and (project_id, priority) would share a name.
    project.models(NAMED_MODELS, header=MODELS_HEADER.replace("column_0_N_name", "column_0_name"))
    for args in (["--dry-run"], ["--noinput"]):
        line = one_clean_line(project.manage("makemigrations", *args))
        named = re.match(r"CommandError: Two constraints or indexes would both be named (\w+): (.*)", line)
        assert named, line
        assert named[1].startswith(f"uq_{LONG_TABLE[:40]}") and len(named[1]) <= 63  # cut as everywhere
        assert f"the unique constraint on {LONG_TABLE}(project_id, title)" in named[2]
        assert f"the unique constraint on {LONG_TABLE}(project_id, priority)" in named[2]
        assert "%(column_0_N_name)s" in line
    assert project.written() == []
