"""A migrate that ends in the middle of a revision (issue 22): killed (SIGKILL), stopped (SIGTERM, SIGINT), or whose
PostgreSQL server dies under it. Real servers and the real CLI; the revision in the middle does DDL, then waits in
Python until the test has stopped the migrate (a marker file says when it got there)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dbservers
import psycopg2
import pytest
import sqlalchemy as sa
from conftest import ROOT
from migcopy import MigrationsCopy, fixture_copy, one_clean_line
from test_topology_galera import galera_database  # noqa: F401 - the fixture
from topology_fixtures import wait_for

from project.core.db import create_engine_for
from project.core.history import applied_log
from project.core.history.scripts import current_heads

REVISIONS = ["0009", "0010", "0011"]


def _history(tmp_path: Path, *, statement_wait: bool = False) -> tuple[MigrationsCopy, Path]:
    """The fixture history plus 0009 (one table), 0010 (CREATE TABLE mid_a, a wait, CREATE TABLE mid_b) and 0011
    (one table). 0010 waits only on its first run (the marker it creates), until the test creates MARKER.go: a
    re-run, and repair's scratch replay of it, go straight through. Its downgrade waits the same way (MARKER-down)
    between its two DROP TABLEs. `statement_wait`: 0011 waits too, inside a
    statement (pg_sleep), on its first run."""
    copy = fixture_copy(tmp_path)
    marker = tmp_path / "reached"
    copy.add("0009", "0008", upgrade='op.create_table("before_t", sa.Column("id", sa.Integer(), primary_key=True))',
             downgrade='op.drop_table("before_t")', message="before")
    copy.add("0010", "0009", message="middle", upgrade=f"""
        import pathlib, time
        op.create_table("mid_a", sa.Column("id", sa.Integer(), primary_key=True))
        marker = pathlib.Path({str(marker)!r})
        if not marker.exists() and not op.get_context().as_sql:  # not when inspected offline
            marker.touch()
            deadline = time.monotonic() + 60
            while not pathlib.Path({str(marker) + ".go"!r}).exists() and time.monotonic() < deadline:
                time.sleep(0.02)  # the test stops the migrate here (or its server, then lets it go on)
        op.create_table("mid_b", sa.Column("id", sa.Integer(), primary_key=True))
    """, downgrade=f"""
        import pathlib, time
        op.drop_table("mid_b")
        marker = pathlib.Path({str(marker) + "-down"!r})
        if not marker.exists() and not op.get_context().as_sql:  # not when inspected offline
            marker.touch()
            time.sleep(60)  # the test stops the migrate here
        op.drop_table("mid_a")
    """)
    wait = f"""
        import pathlib
        op.create_table("after_t", sa.Column("id", sa.Integer(), primary_key=True))
        marker = pathlib.Path({str(marker) + "2"!r})
        if not marker.exists() and not op.get_context().as_sql:  # not when inspected offline
            marker.touch()
            op.execute("SELECT pg_sleep(60)")  # the test stops the server here
    """ if statement_wait else 'op.create_table("after_t", sa.Column("id", sa.Integer(), primary_key=True))'
    copy.add("0011", "0010", upgrade=wait, downgrade='op.drop_table("after_t")', message="after")
    return copy, marker


def _start_migrate(copy: MigrationsCopy, db_url: str, **extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "NO_COLOR": "1", **copy.env(db_url), "MIGRATE_LOCK_TIMEOUT": "20", **extra}
    return subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "migrate"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(marker: Path, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the migrate never reached the marker"
        time.sleep(0.02)


def _state(db_url: str) -> tuple[tuple[str, ...], set[str], list[tuple[str, str, str]]]:
    """alembic_version, the tables, the applied log's (revision, direction, state) rows of the added revisions."""
    engine = create_engine_for(db_url)
    try:
        with engine.connect() as connection:
            table = applied_log.log_table
            rows = [(r.revision, r.direction, r.state) for r in connection.execute(
                sa.select(table).where(table.c.revision.in_(REVISIONS)).order_by(table.c.id))]
            return current_heads(connection), set(sa.inspect(connection).get_table_names()), rows
    finally:
        engine.dispose()


def _execute(db_url: str, statement: str) -> None:
    engine = create_engine_for(db_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(statement))
    finally:
        engine.dispose()


# --- MariaDB: the migrate process stopped mid-revision -------------------------------------------------------


@pytest.fixture
def mariadb_url(mysql_server: dbservers.Server) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield mysql_server.create_database(name)
    mysql_server.drop_database(name)


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM", "SIGINT"])
def test_mariadb_migrate_stopped_mid_revision(mariadb_url: str, tmp_path: Path, how: str) -> None:
    """0010's first DDL ran, then its migrate stopped. SIGKILL: nothing printed, the log row stays `running`, so
    the next migrate cannot know what ran; SIGTERM/SIGINT: one line naming 0010 and what of it ran (also written
    to the log). Either way the next migrate refuses in one line instead of re-running 0010 blind, the lock is
    free, and repair + migrate reach head with each revision applied exactly once. After SIGKILL the operator
    finishes 0010 by hand (repair records it applied); after a signal they undo it (repair clears it, migrate runs
    it again)."""
    copy, marker = _history(tmp_path)
    process = _start_migrate(copy, mariadb_url)
    _wait_for(marker, process)
    process.send_signal(getattr(signal, how))
    stdout, stderr = process.communicate(timeout=60)
    if how == "SIGKILL":
        assert process.returncode == -signal.SIGKILL and stderr == ""
    else:
        assert process.returncode == 128 + getattr(signal, how), stderr
        assert "Traceback" not in stdout + stderr and "Exception during reset" not in stderr, stderr
        [line] = stderr.splitlines()
        assert line.startswith(f"Interrupted ({how}) while applying 0010 middle: MySQL/MariaDB cannot roll back "
                               "DDL"), line
        assert "CREATE TABLE mid_a" in line and "mid_b" not in line and "manage.py repair 0010" in line, line
    heads, tables, rows = _state(mariadb_url)
    assert heads == ("0009",) and "mid_a" in tables and "mid_b" not in tables
    assert rows[-1] == ("0010", "up", "running" if how == "SIGKILL" else "failed")

    refused = copy.manage("migrate", db_url=mariadb_url, env={"MIGRATE_LOCK_TIMEOUT": "5"})
    line = one_clean_line(refused, sa.make_url(mariadb_url).password)
    assert line.startswith("CommandError: Revision 0010 middle did not finish when it was last applied"), line
    assert "recorded at 0009" in line and "manage.py repair 0010" in line and "already exists" not in line
    if how == "SIGKILL":
        assert "does not roll back DDL, so part of it may be applied" in line, line
        assert "does not know which of its statements ran" in line, line
        _execute(mariadb_url, "CREATE TABLE mid_b (id INTEGER NOT NULL AUTO_INCREMENT, PRIMARY KEY (id))")
        expected = "0010: the database has what it creates; recorded as applied."
    else:
        assert "these statements of it had run: CREATE TABLE mid_a" in line, line
        _execute(mariadb_url, "DROP TABLE mid_a")
        expected = "0010: nothing of it is left in the database; failure cleared"
    assert _state(mariadb_url)[0] == ("0009",)  # the refusal ran nothing

    repaired = copy.manage("repair", "0010", db_url=mariadb_url)
    assert repaired.returncode == 0 and expected in repaired.stdout, repaired.stdout + repaired.stderr
    done = copy.manage("migrate", "-v0", db_url=mariadb_url)
    assert done.returncode == 0, done.stderr
    heads, tables, rows = _state(mariadb_url)
    assert heads == ("0011",) and {"before_t", "mid_a", "mid_b", "after_t"} <= tables
    applied = [(rev, state) for rev, direction, state in rows if state in {"applied", "repaired"}]
    if how == "SIGKILL":
        assert applied == [("0009", "applied"), ("0010", "repaired"), ("0011", "applied")], rows
    else:  # the repaired row (direction down) clears the failure; then 0010 runs, once
        assert applied == [("0009", "applied"), ("0010", "repaired"), ("0010", "applied"), ("0011", "applied")]
        assert ("0010", "down", "repaired") in rows


def test_mariadb_downgrade_killed_mid_revision(mariadb_url: str, tmp_path: Path) -> None:
    """`migrate 0009` SIGKILLed inside 0010's downgrade (mid_b dropped, mid_a not): 0010 stays recorded, the next
    migrate refuses it in one line, and once the operator finished the downgrade by hand, repair records 0010 as
    unapplied (alembic_version at 0009); migrate then applies it again."""
    copy, marker = _history(tmp_path)
    Path(str(marker)).touch()  # the upgrade goes straight through
    assert copy.manage("migrate", "-v0", db_url=mariadb_url).returncode == 0
    process = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "migrate", "0009"], cwd=ROOT,
                               env={**os.environ, "NO_COLOR": "1", **copy.env(mariadb_url)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(Path(str(marker) + "-down"), process)
    process.send_signal(signal.SIGKILL)
    stdout, _ = process.communicate(timeout=60)
    assert _state(mariadb_url)[0] == ("0010",), stdout
    refused = copy.manage("migrate", "0009", db_url=mariadb_url)
    line = one_clean_line(refused)
    assert "Revision 0010 middle did not finish when it was last unapplied" in line, line
    assert "recorded at 0010" in line and "manage.py repair 0010" in line, line
    _execute(mariadb_url, "DROP TABLE mid_a")
    repaired = copy.manage("repair", "0010", db_url=mariadb_url)
    assert "0010: the database has what was there before it; recorded as unapplied." in repaired.stdout, \
        repaired.stdout + repaired.stderr
    assert _state(mariadb_url)[0] == ("0009",)
    done = copy.manage("migrate", "-v0", db_url=mariadb_url)
    assert done.returncode == 0, done.stderr
    heads, tables, rows = _state(mariadb_url)
    assert heads == ("0011",) and {"mid_a", "mid_b"} <= tables
    assert rows[-5:] == [("0010", "down", "running"), ("0010", "down", "failed"), ("0010", "down", "repaired"),
                         ("0010", "up", "applied"), ("0011", "up", "applied")], rows


def test_mariadb_stopped_before_any_statement_runs_again(mariadb_url: str, tmp_path: Path) -> None:
    """SIGTERM while 0010 had run none of its statements: the log knows, so the next migrate just runs it."""
    copy, marker = _history(tmp_path)
    path = copy.versions / "0010_test.py"
    body = path.read_text()
    create_a = '    op.create_table("mid_a", sa.Column("id", sa.Integer(), primary_key=True))\n'
    create_b = '    op.create_table("mid_b"'
    path.write_text(body.replace(create_a, "").replace(create_b, create_a + create_b))
    assert copy.manage("migrate", "0009", "-v0", db_url=mariadb_url).returncode == 0
    process = _start_migrate(copy, mariadb_url)
    _wait_for(marker, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143 and "none of its statements had run" in stderr and "Traceback" not in stderr
    again = copy.manage("migrate", "-v0", db_url=mariadb_url)
    assert again.returncode == 0, again.stderr
    heads, _, rows = _state(mariadb_url)
    assert heads == ("0011",) and [r for r in rows if r[2] == "applied"] == [
        ("0009", "up", "applied"), ("0010", "up", "applied"), ("0011", "up", "applied")]


# --- PostgreSQL and SQLite: the migrate process stopped mid-revision -------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def transactional_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'stopped.db'}"
        return
    server: dbservers.Server = request.getfixturevalue("pg_server")
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield server.create_database(name)
    server.drop_database(name)


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_transactional_ddl_stopped_mid_revision(transactional_url: str, tmp_path: Path, how: str) -> None:
    """Transactional DDL: 0010's first DDL rolls back with its transaction, so a stop says nothing was kept (SIGTERM:
    one line, exit 143) and the next migrate simply runs 0010 again, once."""
    copy, marker = _history(tmp_path)
    process = _start_migrate(copy, transactional_url)
    _wait_for(marker, process)
    process.send_signal(getattr(signal, how))
    _, stderr = process.communicate(timeout=60)
    if how == "SIGTERM":
        assert process.returncode == 143 and "Traceback" not in stderr, stderr
        assert stderr.splitlines() == ["Interrupted (SIGTERM) while applying 0010 middle: nothing of it was kept and "
                                       "the database stays recorded at 0009; re-run migrate."], stderr
    heads, tables, _ = _state(transactional_url)
    assert heads == ("0009",) and "mid_a" not in tables
    again = copy.manage("migrate", "-v0", db_url=transactional_url)
    assert again.returncode == 0, again.stderr
    heads, tables, rows = _state(transactional_url)
    assert heads == ("0011",) and {"mid_a", "mid_b"} <= tables
    assert rows == [("0009", "up", "applied"), ("0010", "up", "applied"), ("0011", "up", "applied")]


# --- PostgreSQL: the server dies mid-revision ------------------------------------------------------------------


def _relaunch(server: dbservers.Server) -> None:
    """Start the killed server again on its data directory (crash recovery) and wait until it takes logins."""
    assert server.process is not None
    command = list(server.process.args)  # type: ignore[arg-type]
    dbservers._launch(server, command, "postgres" if os.geteuid() == 0 else None)
    deadline = time.monotonic() + 60
    while True:
        try:
            dbservers._postgres_login(server)
            return
        except psycopg2.OperationalError:
            assert time.monotonic() < deadline, dbservers._log_tail(server.log_path)
            time.sleep(0.05)


def _kill_server(server: dbservers.Server) -> None:
    """What a crashed host does: the postmaster and every backend gone at once."""
    assert server.process is not None
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait()


def test_postgres_server_dies_mid_revision(tmp_path: Path) -> None:
    """A dedicated server (the session's shared ones are never killed), killed twice: during 0010's wait after its
    first DDL, then inside 0011's statement. Each time migrate blames the server in one line, not the revision;
    a connection refused while the server shuts down is not called a refused login; after each restart migrate
    carries on, and every revision is applied exactly once."""
    server = dbservers.start_postgres(tmp_path / "pg")
    try:
        db_url = server.create_database("crash")
        copy, marker = _history(tmp_path, statement_wait=True)

        for revision, reached in (("0010 middle", marker), ("0011 after", Path(str(marker) + "2"))):
            process = _start_migrate(copy, db_url)
            _wait_for(reached, process)
            if revision.startswith("0011"):
                time.sleep(0.2)  # inside pg_sleep
            _kill_server(server)
            Path(str(marker) + ".go").touch()  # 0010 goes on to its next statement
            stdout, stderr = process.communicate(timeout=60)
            line = one_clean_line(subprocess.CompletedProcess([], process.returncode, stdout, stderr),
                                  server.password)
            where = f"postgresql+psycopg2://postgres:***@127.0.0.1:{server.port}/crash"
            assert line.startswith(f"CommandError: Lost the connection to the database server while applying "
                                   f"{revision} ({where})"), line
            rev = revision[:4]
            assert f"On PostgreSQL nothing of {rev} was kept" in line, line
            assert "re-run migrate once the server is back" in line
            assert "fix the revision" not in line and "Nothing of it was kept" not in line
            _relaunch(server)
            if rev == "0010":
                _refused_while_shutting_down(server, copy, db_url)
                _relaunch(server)
        done = copy.manage("migrate", "-v0", db_url=db_url)
        assert done.returncode == 0, done.stderr
        heads, tables, rows = _state(db_url)
        assert heads == ("0011",) and {"before_t", "mid_a", "mid_b", "after_t"} <= tables
        assert rows == [("0009", "up", "applied"), ("0010", "up", "applied"), ("0011", "up", "applied")]
    finally:
        server.stop()


def _refused_while_shutting_down(server: dbservers.Server, copy: MigrationsCopy, db_url: str) -> None:
    """A smart shutdown waits for its last session and refuses new ones with SQLSTATE 57P03 ("the database system
    is shutting down"), which libpq reports without a code: migrate says the server cannot be reached, not that
    it refused the login."""
    assert server.process is not None
    holder = psycopg2.connect(host=server.host, port=server.port, user=server.user, password=server.password,
                              dbname="postgres")
    try:
        server.process.send_signal(signal.SIGTERM)  # smart shutdown: waits for `holder`
        time.sleep(0.3)
        refused = copy.manage("migrate", db_url=db_url)
        line = one_clean_line(refused, server.password)
        assert line.startswith("CommandError: Cannot reach postgresql server") and "shutting down" in line, line
        assert "Login refused" not in line
    finally:
        holder.close()
    server.process.wait(timeout=30)


# --- MariaDB: the server dies mid-revision ---------------------------------------------------------------------


def test_mariadb_server_dies_mid_revision(tmp_path: Path) -> None:
    """A dedicated MariaDB server killed after 0010's first DDL: migrate blames the server in one line and says
    what of 0010 may be applied; restarted, the next migrate refuses 0010 (its log row is `running`); finished by
    hand and repaired, migrate reaches head with each revision applied once."""
    server = dbservers.start_mariadb(tmp_path / "mariadb")
    try:
        db_url = server.create_database("crash")
        copy, marker = _history(tmp_path)
        process = _start_migrate(copy, db_url)
        _wait_for(marker, process)
        assert server.process is not None
        command = list(server.process.args)  # type: ignore[arg-type]
        _kill_server(server)
        Path(str(marker) + ".go").touch()  # 0010 goes on to its next statement
        stdout, stderr = process.communicate(timeout=60)
        line = one_clean_line(subprocess.CompletedProcess([], process.returncode, stdout, stderr), server.password)
        assert line.startswith("CommandError: Lost the connection to the database server while applying 0010 middle "
                               f"(mysql+pymysql://root:***@127.0.0.1:{server.port}/crash"), line
        assert "MySQL/MariaDB cannot roll back DDL: these statements of it had run: CREATE TABLE mid_a" in line, line
        assert "manage.py repair 0010" in line and "fix the revision" not in line, line

        dbservers._launch(server, command, None)
        deadline = time.monotonic() + 60
        while not _can_connect(db_url):
            assert time.monotonic() < deadline, dbservers._log_tail(server.log_path)
            time.sleep(0.05)
        refused = copy.manage("migrate", db_url=db_url)
        assert "Revision 0010 middle did not finish" in one_clean_line(refused, server.password)
        _execute(db_url, "CREATE TABLE mid_b (id INTEGER NOT NULL AUTO_INCREMENT, PRIMARY KEY (id))")
        repaired = copy.manage("repair", "0010", db_url=db_url)
        assert "0010: the database has what it creates; recorded as applied." in repaired.stdout, repaired.stderr
        done = copy.manage("migrate", "-v0", db_url=db_url)
        assert done.returncode == 0, done.stderr
        heads, _, rows = _state(db_url)
        assert heads == ("0011",)
        assert rows == [("0009", "up", "applied"), ("0010", "up", "running"), ("0010", "up", "failed"),
                        ("0010", "up", "repaired"), ("0011", "up", "applied")]
    finally:
        server.stop()


def _can_connect(db_url: str) -> bool:
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect():
            return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


# --- Galera: the migrate process killed on one node ------------------------------------------------------------


def test_galera_migrate_killed_mid_revision(galera_database: list[str], tmp_path: Path) -> None:  # noqa: F811
    """SIGKILL on node 1 after 0010's first DDL: the lock row stays until its lease (3 s here) runs out, then a
    migrate on node 2 refuses 0010 in one line (the `running` row was replicated); finished by hand on node 3,
    repaired and migrated on node 2, every node is at head with the same log."""
    copy, marker = _history(tmp_path)
    lease = {"MIGRATE_LOCK_LEASE": "3"}
    process = _start_migrate(copy, galera_database[0], **lease)
    _wait_for(marker, process)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    refused = copy.manage("migrate", db_url=galera_database[1], env=lease)
    line = one_clean_line(refused, sa.make_url(galera_database[1]).password)
    assert "Revision 0010 middle did not finish" in line and "manage.py repair 0010" in line, line
    _execute(galera_database[2], "CREATE TABLE mid_b (id INTEGER NOT NULL AUTO_INCREMENT, PRIMARY KEY (id))")
    repaired = copy.manage("repair", "0010", db_url=galera_database[1], env=lease)
    assert "0010: the database has what it creates; recorded as applied." in repaired.stdout, repaired.stderr
    done = copy.manage("migrate", "-v0", db_url=galera_database[1], env=lease)
    assert done.returncode == 0, done.stderr
    states = [_state(url) for url in galera_database]
    # Every node applies what the cluster committed, a moment later on the others.
    wait_for(lambda: len({repr(_state(url)) for url in galera_database}) == 1, "every node at the same state")
    assert states[1][0] == ("0011",)
    assert [(rev, state) for rev, _, state in states[1][2]] == [
        ("0009", "applied"), ("0010", "running"), ("0010", "failed"), ("0010", "repaired"), ("0011", "applied")]


def test_galera_sessions_ended_by_the_server_mid_revision(galera_database: list[str], tmp_path: Path) -> None:  # noqa: F811
    """The node ends the migrate's sessions (KILL, as a node leaving the cluster or restarting does) after 0010's
    first DDL: one line that blames the server, with no "Exception during reset" traceback from the lock's
    heartbeat connection, which died too; the next migrate, once the lease ran out, refuses 0010."""
    copy, marker = _history(tmp_path)
    lease = {"MIGRATE_LOCK_LEASE": "3"}
    process = _start_migrate(copy, galera_database[0], **lease)
    _wait_for(marker, process)
    database = sa.make_url(galera_database[0]).database
    engine = sa.create_engine(galera_database[0], poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            sessions = connection.execute(sa.text(
                "SELECT id FROM information_schema.processlist WHERE db = :db AND id <> CONNECTION_ID()"),
                {"db": database}).scalars().all()
            assert len(sessions) == 2, sessions  # the migration session and the lock's heartbeat
            for session in sessions:
                connection.exec_driver_sql(f"KILL {int(session)}")
    finally:
        engine.dispose()
    Path(str(marker) + ".go").touch()
    stdout, stderr = process.communicate(timeout=60)
    line = one_clean_line(subprocess.CompletedProcess([], process.returncode, stdout, stderr),
                          sa.make_url(galera_database[0]).password)
    assert line.startswith("CommandError: Lost the connection to the database server while applying 0010"), line
    assert "these statements of it had run: CREATE TABLE mid_a" in line and "Exception during reset" not in stderr
    refused = copy.manage("migrate", db_url=galera_database[1], env=lease)
    assert "Revision 0010 middle did not finish" in one_clean_line(refused), refused.stderr
