"""The fleet (docs/phases.md): each app instance keeps its row (host, pid, its code's head) fresh from the
lifespan, deletes it on a clean shutdown, and a killed instance ages out. Real uvicorn processes on each engine,
one on its sync driver and one on its async driver."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

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
