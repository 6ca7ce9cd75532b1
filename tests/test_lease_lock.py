"""MIGRATE_LOCK=lease: the lease-row lock (project.core.runner.lease, what Galera uses) on one PostgreSQL and one
MariaDB server, under the tests the advisory lock passes in test_startup_migrations: several `migrate` processes at
once on an empty database apply each revision once (by the applied log), and a killed holder is taken over once its
lease has run out. On SQLite the setting keeps the flock; a value that names no lock is refused in one line.

On the fixture application (tests/fixture_app): its eight revisions. A short lease (2 s) keeps the take-over quick."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import FIXTURE_SETTINGS, fixture_env, run_manage
from servers import ROOT, concurrent_migrates, table_names, version_rows

from project.core.bookkeeping import GALERA_LOCK_TABLE
from project.core.conf import load_settings
from project.core.errors import MigrationError
from project.core.history import applied_log
from project.core.runner import migrator
from project.core.runner.locks import sqlite_lock_path

MIGRATES = 5
REVISIONS = [f"{n:04d}" for n in range(1, 9)]
LEASE = "2"
SERVERS = pytest.mark.parametrize("db_url", ["mysql", "postgresql"], indirect=True)


def lease_env(db_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, **fixture_env(db_url), "NO_COLOR": "1", "MIGRATE_LOCK": "lease", "MIGRATE_LOCK_LEASE": LEASE,
            **extra}


def migrate(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "migrate", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def rows(db_url: str, query: str) -> list[tuple[object, ...]]:
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(query))]
    finally:
        engine.dispose()


@SERVERS
def test_concurrent_migrates_under_the_lease_apply_each_revision_once(db_url: str) -> None:
    concurrent_migrates(lease_env(db_url), MIGRATES)
    assert version_rows(db_url) == ["0008"]
    # The applied log: every revision applied exactly once, by one migrator.
    log = rows(db_url, f"SELECT revision, direction, state FROM {applied_log.TABLE_NAME}")
    assert Counter(revision for revision, _, _ in log) == Counter(REVISIONS), log
    assert {(direction, state) for _, direction, state in log} == {("up", "applied")}, log
    # The lease row, not the session lock, did it: its table exists, and every holder deleted its row.
    assert GALERA_LOCK_TABLE in table_names(db_url)
    assert rows(db_url, f"SELECT name FROM {GALERA_LOCK_TABLE}") == []


HOLDER = textwrap.dedent("""
    import time
    from project.core.runner import migrator
    from project.core.conf import load_settings

    with migrator.locked_connection(load_settings()):
        print("locked", flush=True)
        time.sleep(300)
""")


@SERVERS
def test_a_killed_lease_holder_is_taken_over_after_its_lease(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = lease_env(db_url)
    for name in ("SETTINGS_MODULE", "DEV_DATABASE_URL", "MIGRATE_LOCK", "MIGRATE_LOCK_LEASE"):
        monkeypatch.setenv(name, env[name])
    settings = load_settings(FIXTURE_SETTINGS)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        [(holder_name,)] = rows(db_url, f"SELECT holder FROM {GALERA_LOCK_TABLE}")
        assert f":{holder.pid}:" in str(holder_name)
        # Waited for, across the lease renewals (every half second), and given up after 1 s.
        stdout, stderr = migrate({**env, "MIGRATE_LOCK_TIMEOUT": "1"}).communicate(timeout=120)
        assert stderr.startswith("CommandError: another migrate is running on "), stdout + stderr
        assert "projects" not in table_names(db_url)
        # `migrate --plan` sees the row held, without waiting for it.
        process = migrate(env, "--plan")
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 0 and "A migrate is running on" in stdout, stdout + stderr
    finally:
        holder.send_signal(signal.SIGKILL)  # no chance to delete its row: only the lease can run out
        holder.wait()
    # The row outlives its holder (a session lock would have died with it) until the lease runs out: at least
    # 1.5 s from now, as the holder renewed it every 0.5 s.
    with pytest.raises(MigrationError):
        with migrator.locked_connection(settings, timeout=0):
            pass
    process = migrate(env)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stdout + stderr
    assert "Applying 0001" in stdout
    assert version_rows(db_url) == ["0008"]
    assert rows(db_url, f"SELECT name FROM {GALERA_LOCK_TABLE}") == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_lease_on_sqlite_keeps_the_flock_and_an_unknown_lock_is_refused(db_url: str) -> None:
    env = {**fixture_env(db_url), "MIGRATE_LOCK": "lease"}
    result = run_manage("migrate", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    database = sa.engine.make_url(db_url).database
    assert database and Path(sqlite_lock_path(database)).exists()
    assert GALERA_LOCK_TABLE not in table_names(db_url)

    for args in (["zero"], ["--plan"]):
        result = run_manage("migrate", *args, env={**env, "MIGRATE_LOCK": "advisory"})
        assert result.returncode == 1
        assert result.stderr.splitlines() == [
            "CommandError: MIGRATE_LOCK is 'advisory': use 'auto' (the engine's own lock) or 'lease' (a lock row "
            "under a lease, for servers whose advisory locks exclude nobody)."
        ]
    assert version_rows(db_url) == ["0008"]
