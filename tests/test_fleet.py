"""The fleet (docs/phases.md): each app instance keeps its row (host, pid, its code's head) fresh from the
lifespan, deletes it on a clean shutdown, and a killed instance ages out. Real uvicorn processes on each engine,
one on its sync driver and one on its async driver."""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from servers import stop, uvicorn_app, wait_until_up
from test_drivers_parity import async_url

from project.core.runner import fleet

HANG_GUARD = 60.0  # seconds: only guards against a hang, never asserted on


def rows(db_url: str) -> list[fleet.Instance]:
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return fleet.read(connection)
    finally:
        engine.dispose()


def live_pids(db_url: str) -> set[int]:
    now = fleet.utc_now()
    return {i.pid for i in rows(db_url) if i.alive(now)}


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.1)


def test_instances_beat_leave_and_age_out(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEET_HEARTBEAT", "0.5")
    # The project's history: the demo's, or none in a project started from it (scripts/start_project.py).
    versions = sorted(p.name[:4] for p in (Path(__file__).parent.parent / "migrations" / "versions").glob("0*.py"))
    head = versions[-1] if versions else None
    with uvicorn_app(db_url, tmp_path, migrate_on_startup=True, name="a") as a:
        wait_until_up(a)
        [first] = rows(db_url)
        assert (first.pid, first.head, first.heartbeat) == (a.process.pid, head, 0.5)
        wait_for(lambda: rows(db_url)[0].last_seen > first.last_seen, "a second beat")
        # The second instance on the engine's async driver: its beats go through the AsyncEngine.
        with uvicorn_app(async_url(db_url), tmp_path, migrate_on_startup=False, name="b") as b:
            wait_until_up(b)
            assert live_pids(db_url) == {a.process.pid, b.process.pid}
            os.killpg(a.process.pid, signal.SIGKILL)  # no shutdown: its row stays, and stops beating
            a.process.wait()
            wait_for(lambda: live_pids(db_url) == {b.process.pid}, "the killed instance to age out")
            assert a.process.pid in {i.pid for i in rows(db_url)}  # aged out, not deleted: nobody started since
            stop(b.process)  # a clean shutdown deletes its own row
            assert {i.pid for i in rows(db_url)} == {a.process.pid}
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:  # what the next instance to start does first
            assert [i.pid for i in fleet.forget_gone(connection)] == [a.process.pid]
    finally:
        engine.dispose()
    assert rows(db_url) == []


# --- the table is migrate's ---------------------------------------------------------------------------------


@contextmanager
def app_user(db_url: str) -> Iterator[str]:
    """A URL of `db_url`'s database for a user who may read and write rows but not create tables (the
    application's user in production); SQLite has no users: `db_url` itself."""
    url = sa.make_url(db_url)
    if url.get_backend_name() == "sqlite":
        yield db_url
        return
    user, password = f"app_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    owner = sa.create_engine(db_url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    if url.get_backend_name() == "postgresql":
        grant = [f"CREATE ROLE {user} LOGIN PASSWORD '{password}'", "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
                 # the tables migrate (this owner) creates later
                 f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {user}",
                 f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE ON SEQUENCES TO {user}"]  # serial keys
        revoke = [f"DROP OWNED BY {user}", f"DROP ROLE {user}"]
    else:
        grant = [f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}'",
                 f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{url.database}`.* TO '{user}'@'127.0.0.1'"]
        revoke = [f"DROP USER '{user}'@'127.0.0.1'"]
    with owner.connect() as connection:
        for statement in grant:
            connection.exec_driver_sql(statement)
    try:
        yield url.set(username=user, password=password).render_as_string(hide_password=False)
    finally:
        with owner.connect() as connection:
            for statement in revoke:
                connection.exec_driver_sql(statement)
        owner.dispose()


def test_migrate_creates_the_table_the_app_only_writes_rows(db_url: str, tmp_path: Path) -> None:
    """The application's database user cannot CREATE: `migrate`, run as the schema's owner, creates the fleet's
    table. An instance started before any migrate logs one line (not one per beat), serves on, and joins at its
    next beat once migrate made the table; it deletes its row as it stops."""
    sys.path.insert(0, str(Path(__file__).parent))
    from rolling_app.deploy import Release

    with app_user(db_url) as app_url:
        release = Release(tmp_path, 2, app_url, heartbeat=0.2)
        if app_url != db_url:  # migrate as the owner, the app as its user
            with open(tmp_path / f"{release.module}.py", "a") as settings:
                settings.write(f"MIGRATION_DATABASE_URL = {db_url!r}\n")
        with release.instance(tmp_path, "early") as early:
            wait_until_up(early)
            wait_for(lambda: "does not exist" in early.log, "the instance's line about the missing table")
            time.sleep(1.0)  # five beats: each tried again, none logged again
            assert rows(db_url) == []
            assert "Applying 0003" in release.migrate()
            wait_for(lambda: [i.pid for i in rows(db_url)] == [early.process.pid], "the instance's row")
            lines = [line for line in early.log.splitlines() if "fleet:" in line]
            assert len(lines) == 1, early.log
            assert f"table {fleet.FLEET_TABLE} does not exist (`manage.py migrate` creates it)" in lines[0]
            assert "serves on" in lines[0] and "Traceback" not in early.log
            assert httpx.post(early.base_url + "/items", json={"body": "served"}).status_code == 200
            if app_url != db_url:  # the point: this user could not have created it
                engine = sa.create_engine(app_url, poolclass=sa.pool.NullPool)
                try:
                    with pytest.raises(sa.exc.DBAPIError), engine.begin() as connection:
                        connection.exec_driver_sql("CREATE TABLE not_allowed (id INTEGER PRIMARY KEY)")
                finally:
                    engine.dispose()
            stop(early.process)
        assert rows(db_url) == []


def test_instances_starting_together_all_join(db_url: str) -> None:
    """Two instances writing their first row at the same moment, 20 times over: every row written, no error. (An
    UPDATE-then-INSERT first beat deadlocked on MariaDB, 4 times in 30 such pairs: the loser stayed out of the
    fleet, unseen by migrate's gate, until its next beat.)"""
    import threading

    from project.core.serving.fleet import Membership

    engine = sa.create_engine(db_url)
    errors: list[str] = []
    try:
        with engine.connect() as connection:
            fleet.ensure(connection)

        def start(barrier: threading.Barrier) -> None:
            now = fleet.utc_now()
            membership = Membership(None, engine, fleet.Instance(uuid.uuid4().hex, "h", 1, None, now, now, 30.0))
            with engine.connect() as connection:
                barrier.wait(HANG_GUARD)
                try:
                    membership._join(connection)
                except Exception as exc:  # what the lifespan would log, and stay out of the fleet
                    errors.append(f"{type(exc).__name__}: {exc}")

        for _ in range(20):
            barrier = threading.Barrier(2)
            threads = [threading.Thread(target=start, args=(barrier,)) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(HANG_GUARD)
        assert errors == []
        assert len(rows(db_url)) == 40
    finally:
        engine.dispose()
