"""Alembic's `op.get_context().autocommit_block()` inside a revision, through `manage.py migrate`, on every async
driver (and the default sync ones beside them).

Inside the block the statement must really run outside a transaction: on PostgreSQL `CREATE INDEX CONCURRENTLY`
and on SQLite `VACUUM` fail inside one. Alembic issue #1460 reports asyncpg hanging in the block, so each
subprocess has a short timeout: a hang fails the test instead of blocking the suite. The revision's ops after the
block, its version row, and the way back down run too; and the next revision is again one transaction (SQLite's
BEGIN is the tool's own, see project.core.db): when it fails, nothing of it stays where DDL is transactional.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
from migcopy import fixture_copy
from sqlalchemy.engine import make_url

PAIRS = [("sqlite", "sqlite+aiosqlite"), ("postgresql", "postgresql+asyncpg"),
         ("postgresql", "postgresql+psycopg_async"), ("mysql", "mysql+asyncmy"), ("mysql", "mysql+aiomysql"),
         ("sqlite", "sqlite"), ("postgresql", "postgresql+psycopg2"), ("mysql", "mysql+pymysql")]

# Only statements that refuse to run in a transaction prove the block is what it says.
UPGRADE = '''
name = op.get_bind().dialect.name
with op.get_context().autocommit_block():
    if name == "postgresql":
        op.execute("CREATE INDEX CONCURRENTLY ix_tasks_title_ac ON tasks (title)")
    elif name == "sqlite":
        op.execute("VACUUM")
    else:
        op.create_index("ix_tasks_title_ac", "tasks", ["title"])
op.create_table("after_block", sa.Column("id", sa.Integer(), primary_key=True))
if name == "sqlite":
    op.create_index("ix_tasks_title_ac", "tasks", ["title"])
'''
DOWNGRADE = '''
op.drop_table("after_block")
with op.get_context().autocommit_block():
    op.drop_index("ix_tasks_title_ac", table_name="tasks")
'''
FAILING = '''
op.create_table("half_done", sa.Column("id", sa.Integer(), primary_key=True))
op.execute(sa.table("no_such_table", sa.column("id")).delete())
'''
TIMEOUT = 60  # seconds for one migrate: a few on every driver; a hang must fail, not block


@pytest.mark.parametrize(("db_url", "driver"), PAIRS, indirect=["db_url"], ids=[d for _, d in PAIRS])
def test_autocommit_block_in_a_revision(db_url: str, driver: str, tmp_path: Path) -> None:
    url = make_url(db_url).set(drivername=driver).render_as_string(hide_password=False)
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", upgrade=UPGRADE, downgrade=DOWNGRADE)

    failing = copy.add("0010", "0009", upgrade=FAILING)

    def migrate(*target: str, returncode: int = 0) -> None:
        try:
            result = copy.manage("migrate", *target, db_url=url, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"migrate {' '.join(target)} on {driver} hung in autocommit_block (alembic #1460)")
        assert result.returncode == returncode, result.stdout + result.stderr

    migrate(returncode=1)  # 0009 applied, 0010 failed
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            if conn.dialect.name != "mysql":  # MySQL's DDL commits itself (docs/settings.md: non-transactional DDL)
                assert "half_done" not in sa.inspect(conn).get_table_names()
        failing.unlink()
        migrate()
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            assert "ix_tasks_title_ac" in {ix["name"] for ix in inspector.get_indexes("tasks")}
            assert "after_block" in inspector.get_table_names()
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0009"
        migrate("0008")
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            assert "ix_tasks_title_ac" not in {ix["name"] for ix in inspector.get_indexes("tasks")}
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0008"
    finally:
        engine.dispose()


@pytest.mark.parametrize("db_url", ["postgresql", "sqlite"], indirect=True)
def test_a_revision_the_scratch_replay_cannot_run_is_not_refused(db_url: str, tmp_path: Path) -> None:
    """Before a revision with an autocommit block runs, migrate replays the history to see whether part of it is
    already there (runner.failover). A revision reading a table the history does not create cannot be replayed:
    the check says it could not tell, and the revision runs (once), instead of the deploy being refused."""
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE legacy_counts (n INTEGER NOT NULL)"))
            conn.execute(sa.text("INSERT INTO legacy_counts VALUES (0)"))
        copy = fixture_copy(tmp_path)
        copy.add("0009", "0008", upgrade='''
with op.get_context().autocommit_block():
    op.execute("UPDATE legacy_counts SET n = n + 1")
''')
        assert copy.manage("migrate", "0008", db_url=db_url, in_process=True).returncode == 0
        # 0009 first, the one checked; in a process of its own, as the warning is a log record.
        result = copy.manage("migrate", db_url=db_url)
        assert result.returncode == 0, result.stdout + result.stderr
        output = result.stdout + result.stderr
        assert "Could not check whether revision 0009 was partly applied before (" in output, output
        assert "Traceback" not in output
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT n FROM legacy_counts")).scalar() == 1
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0009"
    finally:
        engine.dispose()
