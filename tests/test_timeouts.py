"""Lock and statement timeouts of `migrate` (project.core.runner.timeouts), on real servers.

A second session holds a conflicting lock on `tasks` (an idle transaction that read it, the usual culprit),
`migrate` runs a revision that alters `tasks`: the revision fails after MIGRATE_DDL_LOCK_TIMEOUT, is
retried MIGRATE_LOCK_RETRIES times, then migrate stops with one line naming the table and the session.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
from conftest import ROOT
from migcopy import fixture_copy, one_clean_line
from sqlalchemy import create_engine, select
from sqlalchemy.pool import NullPool

from project.core.runner import timeouts

ADD_COLUMN = 'op.add_column("tasks", sa.Column("priority", sa.Integer(), nullable=True))'
DROP_COLUMN = 'op.drop_column("tasks", "priority")'


@pytest.fixture(params=["mysql", "postgresql"])
def server_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database on the throwaway MariaDB and PostgreSQL servers (the lock tests need a server)."""
    server = request.getfixturevalue("pg_server" if request.param == "postgresql" else "mysql_server")
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = server.create_database(name)
    yield url
    server.drop_database(name)


def _copy_at_head(tmp_path, url: str, **settings: object):
    """The fixture history migrated to 0008, plus 0009 altering tasks, with these settings."""
    copy = fixture_copy(tmp_path)
    with open(tmp_path / f"{copy.module}.py", "a") as module:
        for name, value in settings.items():
            module.write(f"{name} = {value!r}\n")
    result = copy.manage("migrate", db_url=url, in_process=True)
    assert result.returncode == 0, result.stdout + result.stderr
    copy.add("0009", "0008", upgrade=ADD_COLUMN, downgrade=DROP_COLUMN, message="add tasks priority")
    return copy


class Blocker:
    """Another session with an open transaction that has read `tasks`: it holds a lock every ALTER of
    tasks must wait for (ACCESS SHARE on PostgreSQL, a shared metadata lock on MariaDB)."""

    def __init__(self, url: str):
        self.engine = create_engine(url, poolclass=NullPool)
        self.connection = self.engine.connect()
        dialect = self.connection.dialect.name
        self.id = self.connection.exec_driver_sql(
            "SELECT pg_backend_pid()" if dialect == "postgresql" else "SELECT CONNECTION_ID()").scalar()
        self.connection.commit()
        self.connection.exec_driver_sql("SELECT COUNT(*) FROM tasks").scalar()  # transaction left open

    def release(self) -> None:
        self.connection.rollback()
        self.connection.close()
        self.engine.dispose()


def _version(url: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    finally:
        engine.dispose()


def test_lock_timeout_retries_then_names_table_and_blocker(server_url, tmp_path):
    copy = _copy_at_head(tmp_path, server_url, MIGRATE_DDL_LOCK_TIMEOUT=1, MIGRATE_LOCK_RETRIES=2,
                         MIGRATE_LOCK_RETRY_DELAY=0.2)
    blocker = Blocker(server_url)
    try:
        result = copy.manage("migrate", db_url=server_url, in_process=True)
    finally:
        blocker.release()
    line = one_clean_line(result)
    assert result.stdout.count("LOCK TIMEOUT, retry") == 2, result.stdout
    assert "retry 1 in 0.2s" in result.stdout and "retry 2 in 0.4s" in result.stdout, result.stdout
    assert "Applying 0009 add tasks priority failed" in line, line
    assert "the lock on table tasks was not granted within 1 s (MIGRATE_DDL_LOCK_TIMEOUT), 3 attempts" in line
    pid = "pid" if server_url.startswith("postgresql") else "id"
    assert f"held by {pid} {blocker.id} (" in line, line
    assert "stays recorded at 0008" in line, line
    assert _version(server_url) == "0008"
    assert _log_states(server_url, "0009") == ["failed"]  # the applied log says so too
    # The blocker gone, the same revision goes through.
    again = copy.manage("migrate", db_url=server_url, in_process=True)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _version(server_url) == "0009"
    assert _log_states(server_url, "0009")[-1] == "applied"


def _log_states(url: str, revision: str) -> list[str]:
    from project.core.history.applied_log import log_table

    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            query = select(log_table.c.state).where(log_table.c.revision == revision).order_by(log_table.c.id)
            return list(connection.execute(query).scalars())
    finally:
        engine.dispose()


def test_lock_released_during_retries_succeeds(server_url, tmp_path):
    copy = _copy_at_head(tmp_path, server_url, MIGRATE_DDL_LOCK_TIMEOUT=1, MIGRATE_LOCK_RETRIES=5,
                         MIGRATE_LOCK_RETRY_DELAY=0.5)
    blocker = Blocker(server_url)
    env = {**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1", **copy.env(server_url)}
    process = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "migrate"], cwd=ROOT, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        seen = ""
        while "LOCK TIMEOUT" not in seen:  # the first attempt timed out: now let the retry through
            char = process.stdout.read(1)
            assert char, seen + process.stderr.read()
            seen += char
    finally:
        blocker.release()
    seen += process.stdout.read()  # not communicate(): it would skip what the reader has buffered
    err = process.stderr.read()
    process.wait(timeout=60)
    assert process.returncode == 0, seen + err
    assert "LOCK TIMEOUT, retry 1 in 0.5s" in seen, seen
    assert "Applying 0009 add tasks priority... OK" in seen, seen
    assert _version(server_url) == "0009"


def test_mysql_half_run_revision_is_not_retried(mysql_server, tmp_path):
    """MySQL cannot roll DDL back: once a statement of the revision ran, running it again would fail on
    what that statement left, so the timeout stops at once and lists what ran."""
    url = mysql_server.create_database(f"t_{uuid.uuid4().hex[:12]}")
    copy = fixture_copy(tmp_path)
    with open(tmp_path / f"{copy.module}.py", "a") as module:
        module.write("MIGRATE_DDL_LOCK_TIMEOUT = 1\nMIGRATE_LOCK_RETRIES = 3\nMIGRATE_LOCK_RETRY_DELAY = 0.1\n")
    assert copy.manage("migrate", db_url=url, in_process=True).returncode == 0
    copy.add("0009", "0008", upgrade=f'op.create_table("notes", sa.Column("id", sa.Integer(), primary_key=True))\n'
             f'{ADD_COLUMN}', downgrade=f'{DROP_COLUMN}\nop.drop_table("notes")', message="notes and priority")
    blocker = Blocker(url)
    try:
        result = copy.manage("migrate", db_url=url, in_process=True)
    finally:
        blocker.release()
    line = one_clean_line(result)
    assert "LOCK TIMEOUT" not in result.stdout, result.stdout
    assert "1 attempt;" in line and "CREATE TABLE notes" in line, line
    assert f"held by id {blocker.id} (" in line, line


def test_session_timeouts_set_and_reset(db_url):
    """Inside the block the session has the migration's timeouts; after it, the server's defaults."""
    engine = create_engine(db_url)
    limits = timeouts.Timeouts(lock=1.5, statement=30, retries=0, delay=0)
    with engine.connect() as connection:
        dialect = connection.dialect.name
        show = {
            "postgresql": ["SHOW lock_timeout", "SHOW statement_timeout"],
            "mysql": ["SELECT @@SESSION.lock_wait_timeout", "SELECT @@SESSION.max_statement_time"],
            "sqlite": ["PRAGMA busy_timeout"],
        }[dialect]
        before = [connection.exec_driver_sql(q).scalar() for q in show]
        connection.rollback()
        with timeouts.session_timeouts(connection, limits):
            inside = [str(connection.exec_driver_sql(q).scalar()) for q in show]
            connection.rollback()
        after = [connection.exec_driver_sql(q).scalar() for q in show]
    engine.dispose()
    expected = {"postgresql": ["1500ms", "30s"], "mysql": ["2", "30.0"], "sqlite": ["1500"]}[dialect]
    assert inside == expected
    assert after == before


def test_statement_timeout_stops_a_slow_revision(server_url, tmp_path):
    """MIGRATE_STATEMENT_TIMEOUT: PostgreSQL's statement_timeout, MariaDB's max_statement_time. Not retried."""
    slow = ('op.execute("SELECT pg_sleep(5)") if op.get_bind().dialect.name == "postgresql" '
            'else op.execute("SELECT SLEEP(5)")')
    copy = _copy_at_head(tmp_path, server_url, MIGRATE_STATEMENT_TIMEOUT=0.5, MIGRATE_LOCK_RETRY_DELAY=0.1)
    copy.add("0010", "0009", upgrade=slow, message="slow")
    started = time.monotonic()
    result = copy.manage("migrate", db_url=server_url, in_process=True)
    line = one_clean_line(result)
    assert time.monotonic() - started < 30
    assert "Applying 0010 slow failed" in line and "LOCK TIMEOUT" not in result.stdout
    assert ("statement timeout" in line) or ("max_statement_time" in line), line


def test_tables_in_statements():
    assert timeouts.tables_in('ALTER TABLE "public"."tasks" ADD COLUMN x INT') == ["tasks"]
    assert timeouts.tables_in("CREATE UNIQUE INDEX CONCURRENTLY ix_a ON tasks (title)") == ["tasks"]
    assert timeouts.tables_in("ALTER TABLE `tasks` ADD CONSTRAINT fk FOREIGN KEY (p) REFERENCES projects (id)") \
        == ["tasks", "projects"]
    assert timeouts.tables_in("SELECT 1") == []


def test_sqlite_busy_timeout_retries_then_names_the_table(tmp_path):
    """SQLite: another connection holds the write lock (BEGIN IMMEDIATE); the busy timeout ends the wait,
    the revision rolls back and is retried; SQLite cannot say who holds the lock, and the line says so."""
    import sqlite3

    url = f"sqlite:///{tmp_path / 'busy.db'}"
    copy = _copy_at_head(tmp_path, url, MIGRATE_DDL_LOCK_TIMEOUT=0.5, MIGRATE_LOCK_RETRIES=1,
                         MIGRATE_LOCK_RETRY_DELAY=0.1)
    holder = sqlite3.connect(tmp_path / "busy.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        result = copy.manage("migrate", db_url=url, in_process=True)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    line = one_clean_line(result)
    assert "LOCK TIMEOUT, retry 1 in 0.1s" in result.stdout, result.stdout
    # SQLite locks the whole file, and the revision asks for that lock when it begins (BEGIN IMMEDIATE).
    assert "the database's write lock was not granted within 0.5 s (MIGRATE_DDL_LOCK_TIMEOUT), 2 attempts" in line
    assert "this engine cannot tell which session holds it" in line and "stays recorded at 0008" in line, line
    assert _version(url) == "0008"


def test_mariadb_metadata_lock_info_names_only_the_tables_holder(mysql_server, tmp_path):
    """With MariaDB's metadata_lock_info plugin the holder of tasks' metadata lock is named, not every
    session with an open transaction (the fallback without the plugin would name both)."""
    url = mysql_server.create_database(f"t_{uuid.uuid4().hex[:12]}")
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as admin:
        installed = admin.exec_driver_sql(
            "SELECT COUNT(*) FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'METADATA_LOCK_INFO'").scalar()
        if not installed:
            admin.exec_driver_sql("INSTALL SONAME 'metadata_lock_info'")
    engine.dispose()
    copy = _copy_at_head(tmp_path, url, MIGRATE_DDL_LOCK_TIMEOUT=1, MIGRATE_LOCK_RETRIES=0)
    blocker = Blocker(url)
    bystander = create_engine(url, poolclass=NullPool).connect()
    bystander_id = bystander.exec_driver_sql("SELECT CONNECTION_ID()").scalar()
    bystander.exec_driver_sql("SELECT COUNT(*) FROM projects").scalar()  # an open transaction, on another table
    try:
        result = copy.manage("migrate", db_url=url, in_process=True)
    finally:
        blocker.release()
        bystander.rollback()
        bystander.close()
    line = one_clean_line(result)
    assert f"held by id {blocker.id} (" in line, line
    assert f"id {bystander_id} (" not in line, line
