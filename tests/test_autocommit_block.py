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
