"""Start-up migrations and readiness through a database outage (issue 22, item 2): a start-up migration that loses
its server waits for it (MIGRATE_ON_STARTUP_WAIT) instead of stopping the whole uvicorn server, applies every
revision exactly once when the server is back, and gives up in one line when it is not; /health/ready answers 503
while the database is away and 200 again after, without a restart. Real servers: a PostgreSQL of the test's own
(the session's shared ones are never killed), SIGKILLed and started again on its data directory and port."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dbservers
import httpx
import pytest
import sqlalchemy as sa
from conftest import TESTS_DIR
from migcopy import MigrationsCopy, fixture_copy
from servers import Running, app_env, find_free_port, serve, version_rows, wait_until_up
from topology_fixtures import can_connect, wait_for

from project.core.conf import load_settings
from project.core.db import create_engine_for
from project.core.errors import DatabaseFailure, MigrationError, classify, mask_url
from project.core.history import applied_log
from project.core.serving.startup import migrate_on_startup

WAIT_LINE = "Start-up migrations wait for "


def startup_history(tmp_path: Path) -> tuple[MigrationsCopy, Path]:
    """The fixture history (0001..0008) plus 0009, which creates a table, then sleeps inside a statement on its
    first run only (a marker file says when it got there), and 0010."""
    copy = fixture_copy(tmp_path)
    marker = tmp_path / "sleeping"
    copy.add("0009", "0008", message="sleeps", upgrade=f"""
        import pathlib
        op.create_table("slow_t", sa.Column("id", sa.Integer(), primary_key=True))
        marker = pathlib.Path({str(marker)!r})
        if not marker.exists() and not op.get_context().as_sql:  # not when inspected offline
            marker.touch()
            sleep = "pg_sleep" if op.get_bind().dialect.name == "postgresql" else "SLEEP"
            op.execute(f"SELECT {{sleep}}(60)")  # the test kills the server (or the session) here
    """, downgrade='op.drop_table("slow_t")')
    copy.add("0010", "0009", message="after", upgrade='op.create_table("after_t", sa.Column("id", sa.Integer(), '
             'primary_key=True))', downgrade='op.drop_table("after_t")')
    return copy, marker


@pytest.fixture(autouse=True)
def _uvicorn_log_reaches_caplog(monkeypatch: pytest.MonkeyPatch) -> None:
    uvicorn_log_reaches_caplog(monkeypatch)


def uvicorn_log_reaches_caplog(monkeypatch: pytest.MonkeyPatch) -> None:
    """The start-up's lines are read from uvicorn's logger in process, through caplog's handler on the root logger:
    an earlier test of this worker may have configured uvicorn's logging (its LOGGING_CONFIG: "uvicorn" does not
    propagate) or disabled loggers (logging.config)."""
    for name in ("uvicorn", "uvicorn.error"):
        monkeypatch.setattr(logging.getLogger(name), "disabled", False)
        monkeypatch.setattr(logging.getLogger(name), "propagate", True)


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[dbservers.Server]:
    server = dbservers.start_postgres(tmp_path / "pg")
    yield server
    server.stop()


def startup_app(copy: MigrationsCopy, db_url: str, tmp_path: Path, *, workers: int = 1, **extra: str):
    """uvicorn serving the project's app on `copy`'s settings, with start-up migrations."""
    port = find_free_port()
    args = [sys.executable, "-m", "uvicorn", "project.app.asgi:app", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers)]
    env = app_env(db_url, True, copy.module, PYTHONPATH=os.pathsep.join([copy.pythonpath, str(TESTS_DIR)]), **extra)
    return serve(args, env, tmp_path / "uvicorn.log", port)


def wait_until_sleeping(marker: Path, server: Running) -> None:
    deadline = time.monotonic() + 90  # guards against a hang only
    while not marker.exists():
        assert server.process.poll() is None, server.log
        assert time.monotonic() < deadline, f"no worker reached 0009:\n{server.log}"
        time.sleep(0.02)


def ready(server: Running) -> int | None:
    """/health/ready's status, or None when no worker answers (all still in start-up: the socket queues)."""
    try:
        return httpx.get(server.base_url + "/health/ready", timeout=2).status_code
    except httpx.TransportError:
        return None


def poll_ready(server: Running, wanted: int) -> None:
    deadline = time.monotonic() + 60  # guards against a hang only
    while ready(server) != wanted:
        assert server.process.poll() is None, server.log
        assert time.monotonic() < deadline, f"/health/ready never answered {wanted}:\n{server.log}"
        time.sleep(0.1)


def log_rows(db_url: str) -> list[tuple[str, str, str]]:
    """The applied log's (revision, direction, state) rows, oldest first."""
    engine = create_engine_for(db_url)
    try:
        with engine.connect() as connection:
            table = applied_log.log_table
            return [(r.revision, r.direction, r.state) for r in connection.execute(
                sa.select(table).order_by(table.c.id))]
    finally:
        engine.dispose()


def test_workers_wait_out_a_crash_mid_migration_and_readiness_follows_the_database(
        own_postgres: dbservers.Server, tmp_path: Path) -> None:
    """Three workers; the one migrating is inside 0009 (the others wait for its lock) when the server is SIGKILLed,
    then started again on its port. The uvicorn server keeps running, every worker waits (logged, password masked)
    and starts; 0009 is applied once, after the restart. Then, the app serving: the server killed again -> 503
    (one log line per cause, no traceback), started again -> 200, with no restart of the app."""
    db_url = own_postgres.create_database("failover")
    # The throwaway servers commit asynchronously (fast DDL): a crash would lose the last commits, as an
    # asynchronous standby's failover may. Here every commit must survive the kill.
    own_postgres._admin_execute(['ALTER DATABASE "failover" SET synchronous_commit = on'])
    password = sa.make_url(db_url).password
    copy, marker = startup_history(tmp_path)
    with startup_app(copy, db_url, tmp_path, workers=3) as server:
        wait_until_sleeping(marker, server)
        dbservers.kill_server(own_postgres)
        # Down: no worker can answer ready (they are all in start-up, so none may even serve the socket).
        assert ready(server) != 200
        time.sleep(1)  # an outage: the workers retry against a closed port meanwhile
        dbservers.restart_server(own_postgres)
        wait_until_up(server, started_workers=3)
        assert server.process.poll() is None
        assert ready(server) == 200

        # The app running: the database dies and comes back.
        dbservers.kill_server(own_postgres)
        poll_ready(server, 503)
        for _ in range(10):  # a load balancer polling
            assert ready(server) == 503
        dbservers.restart_server(own_postgres)
        poll_ready(server, 200)
        log = server.log

    assert "Child process failed" not in log and "Traceback" not in log, log
    assert log.count("Application startup complete.") == 3, log
    for revision in ("0001", "0008", "0009", "0010"):
        assert log.count(f"  Applied {revision} ") == 1, log
    assert version_rows(db_url) == ["0010"]
    # Each revision once in the applied log: 0009's first run went with its transaction, the re-run is the row.
    assert log_rows(db_url) == [(f"{n:04d}", "up", "applied") for n in range(1, 11)]
    waits = [line for line in log.splitlines() if WAIT_LINE in line]
    assert waits, log
    assert all(sa.make_url(db_url).render_as_string(hide_password=True) in line for line in waits), waits
    assert password and password not in log
    # Readiness: one line per worker and new cause while the database was away, however often it was asked (the
    # cause may change once as the server goes: a connection cut, then refused).
    causes, answers = log.count("/health/ready answers 503"), log.count('"GET /health/ready HTTP/1.1" 503')
    assert 1 <= causes <= 2 * 3 and causes < answers, log


def test_a_session_cut_by_a_crash_is_a_lost_connection(own_postgres: dbservers.Server) -> None:
    """psycopg2 gives no SQLSTATE for a session whose server died: the dialect's is_disconnect names it (it reads
    the driver's exception classes, so the dialect must be built with its driver: it was not, and this said
    OTHER). Both the driver's own exception and SQLAlchemy's wrapping of it."""
    import psycopg2

    db_url = own_postgres.create_database("cut")
    url = sa.make_url(db_url)
    raw = psycopg2.connect(host=url.host, port=url.port, user=url.username, password=url.password,
                           dbname=url.database)
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        connection = engine.connect()
        dbservers.kill_server(own_postgres)
        with pytest.raises(psycopg2.OperationalError) as caught, raw.cursor() as cursor:
            cursor.execute("SELECT 1")
        assert caught.value.pgcode is None  # nothing but the message: only is_disconnect can tell
        assert classify(caught.value, db_url) is DatabaseFailure.DISCONNECTED
        with pytest.raises(sa.exc.OperationalError) as wrapped:
            connection.exec_driver_sql("SELECT 1")
        assert classify(wrapped.value, db_url) is DatabaseFailure.DISCONNECTED
    finally:
        raw.close()
        engine.dispose()


def test_a_database_that_stays_away_fails_the_worker_in_one_line(tmp_path: Path) -> None:
    """Nothing listens on the port: the worker waits MIGRATE_ON_STARTUP_WAIT seconds, one line per retry, then
    fails with one line that says what it waited for (no traceback), and the server stops as before."""
    copy, _ = startup_history(tmp_path)
    db_url = f"postgresql+psycopg2://app:s3cret%40pw@127.0.0.1:{find_free_port()}/app"
    with startup_app(copy, db_url, tmp_path, MIGRATE_ON_STARTUP_WAIT="1.5") as server:
        server.process.wait(timeout=90)
        log = server.log
    assert server.process.returncode != 0
    masked = "postgresql+psycopg2://app:***@127.0.0.1"
    failed = [line for line in log.splitlines() if "Start-up migrations failed" in line]
    assert len(failed) == 1, log
    assert "waited 1.5s (MIGRATE_ON_STARTUP_WAIT) for the database server to accept connections at " + masked \
        in failed[0], log
    assert "Cannot reach postgresql server" in failed[0]
    assert WAIT_LINE + "the database server to accept connections at " + masked in log
    assert "s3cret" not in log and "Traceback" not in log, log


def test_a_server_told_to_stop_does_not_wait_out_the_bound(tmp_path: Path) -> None:
    """SIGTERM while a worker waits for its database: the wait ends there (not after MIGRATE_ON_STARTUP_WAIT), in
    one line, and the server exits."""
    copy, _ = startup_history(tmp_path)
    db_url = f"postgresql+psycopg2://app:pw@127.0.0.1:{find_free_port()}/app"
    with startup_app(copy, db_url, tmp_path, MIGRATE_ON_STARTUP_WAIT="600") as server:
        deadline = time.monotonic() + 90  # guards against a hang only
        while WAIT_LINE not in server.log:
            assert server.process.poll() is None and time.monotonic() < deadline, server.log
            time.sleep(0.05)
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=120)  # far below the 600 s bound: a hang guard, not a timing
        log = server.log
    failed = [line for line in log.splitlines() if "Start-up migrations failed" in line]
    assert len(failed) == 1 and "stopped (SIGTERM) while waiting for the database server to accept connections" \
        in failed[0], log
    assert "Traceback" not in log, log


def _settings(copy: MigrationsCopy, db_url: str, monkeypatch: pytest.MonkeyPatch, **extra: str):
    monkeypatch.syspath_prepend(copy.pythonpath)
    for name, value in {"DEV_DATABASE_URL": db_url, **extra}.items():
        monkeypatch.setenv(name, value)
    return load_settings(copy.module)


def test_no_wait_fails_at_once_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         caplog: pytest.LogCaptureFixture) -> None:
    """MIGRATE_ON_STARTUP_WAIT=0: the first failure to reach the server is the worker's, worded as always."""
    copy, _ = startup_history(tmp_path)
    settings = _settings(copy, f"postgresql+psycopg2://app:pw@127.0.0.1:{find_free_port()}/app", monkeypatch,
                         MIGRATE_ON_STARTUP_WAIT="0")
    with caplog.at_level(logging.INFO, logger="uvicorn.error"), pytest.raises(sa.exc.OperationalError):
        migrate_on_startup(settings)
    messages = [record.getMessage() for record in caplog.records]
    assert not any(WAIT_LINE in message for message in messages), messages
    assert [m for m in messages if "failed" in m] == [m for m in messages if m.startswith(
        "Start-up migrations failed: Cannot reach postgresql server 127.0.0.1:")], messages


def test_a_standby_is_waited_for_until_the_bound(pg_standby: dbservers.Server, pg_database: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    """A standby may be the primary-to-be of a failover: the refusal is waited out like an outage (here it is
    never promoted), then the give-up line carries the refusal."""
    standby_url = pg_standby.url(pg_database)
    wait_for(lambda: can_connect(standby_url), "the standby replaying CREATE DATABASE")
    copy, _ = startup_history(tmp_path)
    settings = _settings(copy, standby_url, monkeypatch, MIGRATE_ON_STARTUP_WAIT="1")
    with caplog.at_level(logging.INFO, logger="uvicorn.error"), pytest.raises(MigrationError) as caught:
        migrate_on_startup(settings)
    masked = sa.make_url(standby_url).render_as_string(hide_password=True)
    messages = [record.getMessage() for record in caplog.records]
    assert f"{WAIT_LINE}the standby to be promoted (it is in recovery) at {masked}: 0s so far " \
           "(MIGRATE_ON_STARTUP_WAIT=1s)." in messages, messages
    assert str(caught.value) == (f"waited 1s (MIGRATE_ON_STARTUP_WAIT) for the standby to be promoted (it is in "
                                 f"recovery) at {masked}, in vain: {masked} is a read-only standby (in recovery): "
                                 "point MIGRATION_DATABASE_URL/DATABASE_URL at the primary.")
    assert messages[-1] == f"Start-up migrations failed: {caught.value}"


def _multi_host(url: str, *ports: int) -> str:
    """`url`'s login and database on libpq's host list (127.0.0.1 on each of `ports`), writable servers only."""
    one = sa.make_url(url)
    return sa.engine.URL.create(one.drivername, one.username, one.password, database=one.database, query={
        "host": [f"127.0.0.1:{port}" for port in ports], "target_session_attrs": "read-write",
        "connect_timeout": "3"}).render_as_string(hide_password=False)


def connect_failure(url: str) -> sa.exc.DBAPIError:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with pytest.raises(sa.exc.DBAPIError) as caught:
            engine.connect().close()
        return caught.value
    finally:
        engine.dispose()


def test_a_multi_host_url_without_a_primary_is_an_outage(pg_server: dbservers.Server, pg_standby: dbservers.Server,
                                                         pg_database: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """libpq's host list with target_session_attrs=read-write, no SQLSTATE in its failure: a dead primary beside a
    standby (a failover not done yet) is read-only, and waited for at start-up; no server taking logins is
    unreachable; a wrong password on the primary stays a refused login."""
    standby_url = pg_standby.url(pg_database)
    wait_for(lambda: can_connect(standby_url), "the standby replaying CREATE DATABASE")
    closed = find_free_port()
    failover = _multi_host(standby_url, closed, pg_standby.port)
    assert classify(connect_failure(failover), failover) is DatabaseFailure.READ_ONLY
    nobody = _multi_host(standby_url, closed, find_free_port())
    assert classify(connect_failure(nobody), nobody) is DatabaseFailure.UNREACHABLE
    wrong = sa.make_url(_multi_host(pg_server.url(pg_database), closed, pg_server.port)).set(password="wrong")
    wrong_url = wrong.render_as_string(hide_password=False)
    assert classify(connect_failure(wrong_url), wrong_url) is DatabaseFailure.LOGIN_OR_NO_DATABASE

    copy, _ = startup_history(tmp_path)
    settings = _settings(copy, failover, monkeypatch, MIGRATE_ON_STARTUP_WAIT="1")
    with caplog.at_level(logging.INFO, logger="uvicorn.error"), pytest.raises(MigrationError) as caught:
        migrate_on_startup(settings)
    assert str(caught.value).startswith("waited 1s (MIGRATE_ON_STARTUP_WAIT) for a writable primary (the server is "
                                        f"read-only) at {mask_url(failover)}, in vain: "), caught.value
    assert sa.make_url(failover).password not in caplog.text


def test_mariadb_revision_cut_mid_way_is_not_waited_for(mysql_server: dbservers.Server, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """MariaDB keeps 0009's CREATE TABLE when its session dies: no retry (it would run 0009 again blind), the
    start-up fails at once with the runner's line, which says to finish or undo it by hand and `repair`."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    db_url = mysql_server.create_database(name)
    try:
        copy, marker = startup_history(tmp_path)
        settings = _settings(copy, db_url, monkeypatch, MIGRATE_ON_STARTUP_WAIT="60")

        def kill_the_migration() -> None:
            deadline = time.monotonic() + 90
            while not marker.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            engine = create_engine_for(db_url)
            try:
                with engine.connect() as connection:
                    for (session,) in connection.execute(sa.text(
                            "SELECT id FROM information_schema.processlist WHERE db = :db AND info LIKE 'SELECT SLEEP%'"
                    ), {"db": name}):
                        connection.exec_driver_sql(f"KILL {int(session)}")
            finally:
                engine.dispose()

        killer = threading.Thread(target=kill_the_migration)
        killer.start()
        try:
            with caplog.at_level(logging.INFO, logger="uvicorn.error"), pytest.raises(MigrationError) as caught:
                migrate_on_startup(settings)
        finally:
            killer.join()
        messages = [record.getMessage() for record in caplog.records]
        assert not any(WAIT_LINE in message for message in messages), messages
        assert str(caught.value).startswith("Lost the connection to the database server while applying 0009 sleeps")
        assert "then run `manage.py repair 0009` and migrate." in str(caught.value)
        assert messages[-1] == f"Start-up migrations failed: {caught.value}"
    finally:
        mysql_server.drop_database(name)
