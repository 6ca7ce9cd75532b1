"""Revisions that run partly outside a transaction (project.core.inspection.concurrently): CREATE/DROP INDEX
CONCURRENTLY under Alembic's autocommit_block, through `migrate` on the three engines and through
`migrate --sql` piped to psql; the P112 lint rule; makemigrations --concurrent-indexes; the INVALID index a
failed concurrent build leaves, reported with its fix.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import uuid
from io import StringIO
from pathlib import Path

import pytest
import sqlalchemy as sa
from fixture_app.models import Base
from migcopy import fixture_copy, one_clean_line

from project.core.inspection.concurrently import lint
from project.core.runner.invalid_indexes import invalid_indexes

CONCURRENT_UP = """
with op.get_context().autocommit_block():
    op.create_index("ix_tasks_details_title", "tasks", ["title", "state"], postgresql_concurrently=True)
"""
CONCURRENT_DOWN = """
with op.get_context().autocommit_block():
    op.drop_index("ix_tasks_details_title", table_name="tasks", postgresql_concurrently=True)
"""


def _indexes(url: str, table: str = "tasks") -> dict[str, bool]:
    """Index name -> valid (PostgreSQL's pg_index.indisvalid; always True elsewhere)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            names = {ix["name"]: True for ix in sa.inspect(connection).get_indexes(table)}
            if connection.dialect.name == "postgresql":
                names = dict(connection.exec_driver_sql(
                    "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                    "JOIN pg_class t ON t.oid = i.indrelid WHERE t.relname = %(t)s", {"t": table}).all())
            return names
    finally:
        engine.dispose()


def test_concurrent_index_revision_through_migrate(db_url, tmp_path):
    """The same revision on PostgreSQL (really concurrent: refused inside a transaction), MariaDB and SQLite
    (the flag is ignored), up and down."""
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", upgrade=CONCURRENT_UP, downgrade=CONCURRENT_DOWN, message="concurrent index")
    result = copy.manage("migrate", db_url=db_url, in_process=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _indexes(db_url).get("ix_tasks_details_title") is True
    down = copy.manage("migrate", "0008", db_url=db_url, in_process=True)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "ix_tasks_details_title" not in _indexes(db_url)


def test_concurrently_inside_the_transaction_fails_on_postgresql(pg_server, tmp_path):
    """What P112 prevents: without the autocommit_block PostgreSQL refuses the statement."""
    url = pg_server.create_database(f"t_{uuid.uuid4().hex[:12]}")
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", upgrade='op.create_index("ix_t", "tasks", ["title", "state"], '
             'postgresql_concurrently=True)', downgrade='op.drop_index("ix_t", table_name="tasks")', message="bad")
    line = one_clean_line(copy.manage("migrate", db_url=url, in_process=True))
    assert "cannot run inside a transaction block" in line, line


def test_concurrent_index_through_migrate_sql_and_psql(pg_server, tmp_path):
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", upgrade=CONCURRENT_UP, downgrade=CONCURRENT_DOWN, message="concurrent index")
    url = pg_server.create_database(f"t_{uuid.uuid4().hex[:12]}")
    offline = copy.manage("migrate", "--sql", db_url=url, in_process=True)
    assert offline.returncode == 0, offline.stderr
    script = offline.stdout
    # The concurrent statement stands between a COMMIT and a BEGIN: no transaction around it.
    lines = [line.strip() for line in script.splitlines() if line.strip() and not line.startswith("--")]
    at = next(i for i, line in enumerate(lines) if "CREATE INDEX CONCURRENTLY ix_tasks_details_title" in line)
    before = [line for line in lines[:at] if line in {"BEGIN;", "COMMIT;"}]
    assert before[-1] == "COMMIT;", lines[:at]
    after = [line for line in lines[at + 1:] if line in {"BEGIN;", "COMMIT;"}]
    assert after[0] == "BEGIN;", lines[at:]
    database = sa.make_url(url).database
    applied = subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", pg_server.host, "-p", str(pg_server.port),
         "-U", pg_server.user, "-d", database], input=script, text=True, capture_output=True, timeout=120,
        env={**os.environ, "PGPASSWORD": pg_server.password})
    assert applied.returncode == 0, applied.stderr
    assert _indexes(url).get("ix_tasks_details_title") is True
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0009"
    engine.dispose()


def test_failed_concurrent_build_reports_the_invalid_index(pg_server, tmp_path):
    """A unique index built concurrently over duplicate rows fails and leaves an INVALID index: migrate
    says so and how to fix it; after the fix (drop it, remove the duplicates) the revision applies."""
    url = pg_server.create_database(f"t_{uuid.uuid4().hex[:12]}")
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", upgrade="""
        with op.get_context().autocommit_block():
            op.create_index("uq_tasks_title", "tasks", ["title"], unique=True, postgresql_concurrently=True)
        """, downgrade='with op.get_context().autocommit_block():\n'
                       '    op.drop_index("uq_tasks_title", table_name="tasks", postgresql_concurrently=True)',
        message="unique titles")
    assert copy.manage("migrate", "0008", db_url=url, in_process=True).returncode == 0
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        project = connection.exec_driver_sql("INSERT INTO projects (slug, name) VALUES ('p', 'P') RETURNING id")
        pid = project.scalar()
        for _ in range(2):
            connection.exec_driver_sql(f"INSERT INTO tasks (project_id, title) VALUES ({pid}, 'same')")
    line = one_clean_line(copy.manage("migrate", db_url=url, in_process=True))
    assert "Applying 0009 unique titles failed" in line, line
    assert "left index uq_tasks_title INVALID" in line, line
    assert "`DROP INDEX CONCURRENTLY uq_tasks_title;`" in line, line
    assert "stays recorded at 0008" in line, line
    assert _indexes(url)["uq_tasks_title"] is False
    with engine.connect() as connection:
        assert invalid_indexes(connection) == ["uq_tasks_title"]
        connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            "DROP INDEX CONCURRENTLY uq_tasks_title")
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE tasks SET title = 'other' WHERE id = (SELECT max(id) FROM tasks)")
    engine.dispose()
    again = copy.manage("migrate", db_url=url, in_process=True)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _indexes(url)["uq_tasks_title"] is True


# --- P112 -----------------------------------------------------------------------------------------


def _p111(body: str) -> list[int]:
    tree = ast.parse(body)
    return [problem.line for problem in lint(Path("x.py"), tree)]


def test_lint_refuses_concurrently_outside_an_autocommit_block():
    assert _p111('op.create_index("ix", "t", ["a"], postgresql_concurrently=True)') == [1]
    assert _p111('op.drop_index("ix", table_name="t", postgresql_concurrently=True)') == [1]
    assert _p111('op.execute("CREATE INDEX CONCURRENTLY ix ON t (a)")') == [1]
    assert _p111('with op.batch_alter_table("t") as b:\n    b.create_index("ix", ["a"], postgresql_concurrently=True)'
                 ) == [2]


def test_lint_silent_on_the_safe_twin():
    assert _p111('with op.get_context().autocommit_block():\n'
                 '    op.create_index("ix", "t", ["a"], postgresql_concurrently=True)') == []
    assert _p111('with context.get_context().autocommit_block():\n'
                 '    op.execute("DROP INDEX CONCURRENTLY ix")') == []
    assert _p111('op.create_index("ix", "t", ["a"], postgresql_concurrently=False)') == []
    assert _p111('op.create_index("ix", "t", ["a"])') == []


def test_check_reports_p111_with_file_and_line(tmp_path):
    copy = fixture_copy(tmp_path)
    path = copy.add("0009", "0008", upgrade='op.create_index("ix_t", "tasks", ["title", "state"], '
                    'postgresql_concurrently=True)', downgrade='op.drop_index("ix_t", table_name="tasks")')
    result = copy.manage("check", in_process=True)
    assert result.returncode == 1, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert f"{path.name}:" in output and "[P112]" in output, output
    path.write_text(path.read_text().replace("    op.create_index(", "    with op.get_context().autocommit_block():"
                                             "\n        op.create_index("))
    clean = copy.manage("check", in_process=True)
    assert "P112" not in clean.stdout + clean.stderr, clean.stdout + clean.stderr


# --- makemigrations --concurrent-indexes -----------------------------------------------------------


@pytest.fixture
def new_indexes():
    """An index on an existing table (projects) and a new table with its own index, removed afterwards."""
    projects = Base.metadata.tables["projects"]
    index = sa.Index("ix_projects_name", projects.c.name)
    labels = sa.Table("labels", Base.metadata, sa.Column("id", sa.Integer, primary_key=True),
                      sa.Column("text", sa.String(40), index=True))
    yield
    projects.indexes.discard(index)
    Base.metadata.remove(labels)


def test_makemigrations_concurrent_indexes_writes_a_revision_that_applies(new_indexes, tmp_path, monkeypatch,
                                                                         pg_server):
    from project.core.management import call_command

    copy = fixture_copy(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fixture_app.settings.dev", raising=False)
    monkeypatch.setenv("SETTINGS_MODULE", copy.module)
    monkeypatch.setenv("DEV_DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite3'}")
    call_command("makemigrations", message="indexes", concurrent_indexes=True, interactive=False, stdout=StringIO())
    [written] = copy.versions.glob("0009_*_indexes.py")  # 0009_<suffix>: project.core.authoring.revision_ids
    source = written.read_text()
    upgrade = source[source.index("def upgrade"):source.index("def downgrade")]
    downgrade = source[source.index("def downgrade"):]
    # The existing table's index: concurrent, outside any batch, in an autocommit block; both ways.
    assert ("    with op.get_context().autocommit_block():\n        op.create_index('ix_projects_name', 'projects', "
            "['name'], unique=False, postgresql_concurrently=True)") in upgrade, upgrade
    assert ("    with op.get_context().autocommit_block():\n        op.drop_index('ix_projects_name', "
            "table_name='projects', postgresql_concurrently=True)") in downgrade, downgrade
    # The new table's index: nobody reads the table yet, a plain build.
    assert "ix_labels_text" in upgrade and upgrade.count("postgresql_concurrently") == 1, upgrade
    # It passes the lint, and applies on SQLite and PostgreSQL.
    check = copy.manage("check", in_process=True)
    assert "P112" not in check.stdout + check.stderr
    for url in (f"sqlite:///{tmp_path / 'applied.sqlite3'}", pg_server.create_database(f"t_{uuid.uuid4().hex[:12]}")):
        result = copy.manage("migrate", db_url=url, in_process=True)
        assert result.returncode == 0, result.stdout + result.stderr
        assert _indexes(url, "projects").get("ix_projects_name") is True
        down = copy.manage("migrate", "0008", db_url=url, in_process=True)
        assert down.returncode == 0, down.stdout + down.stderr
