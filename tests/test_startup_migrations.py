"""Migrations under the database-level lock: many workers at start-up, many `manage.py migrate` at once,
a lock wait that ends in a clear error, and a killed holder that blocks nobody.

The project's application factory serves the fixture application's settings (tests/fixture_app: its
history of eight revisions), so these tests do not depend on the demo's models."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import FIXTURE_SETTINGS, fixture_env, run_manage
from servers import ROOT, concurrent_migrates, table_names, uvicorn_app, version_rows, wait_until_up
from sqlalchemy.engine import make_url

import project
from project.core.errors import MigrationError
from project.core.runner import migrator

WORKERS = 4
MIGRATES = 8


def test_workers_starting_at_once_migrate_exactly_once(db_url: str, tmp_path: Path) -> None:
    with uvicorn_app(db_url, tmp_path, migrate_on_startup=True, workers=WORKERS,
                     settings_module=FIXTURE_SETTINGS) as server:
        wait_until_up(server, started_workers=WORKERS)
        with server.client() as http:
            assert http.get("/health/ready").status_code == 200
    log = server.log
    assert log.count("Application startup complete.") == WORKERS
    # One worker got the lock first and applied everything; the others waited and found nothing to do.
    assert log.count("Applied 8 migration(s)") == 1, log
    assert log.count("No migrations to apply; database at 0008.") == WORKERS - 1, log
    assert log.count("Applied 0001 ") == 1
    for bad in ("Error", "ERROR", "Traceback"):
        assert bad not in log, log
    assert version_rows(db_url) == ["0008"]
    assert {"projects", "tasks", "alembic_version"} <= table_names(db_url)


def test_concurrent_manage_migrate(db_url: str) -> None:
    env = {**os.environ, **fixture_env(db_url), "NO_COLOR": "1"}
    concurrent_migrates(env, MIGRATES)
    assert version_rows(db_url) == ["0008"]
    assert {"projects", "tasks"} <= table_names(db_url)


def test_lock_wait_ends_with_a_clear_error(fixture_settings, db_url: str) -> None:
    with migrator.locked_connection(fixture_settings) as connection:
        assert not connection.in_transaction()
        # In-process caller: a MigrationError naming the database, password masked.
        with pytest.raises(MigrationError) as caught:
            with migrator.locked_connection(fixture_settings, timeout=0.5):
                pass
        message = str(caught.value)
        assert message.startswith("another migrate is running on ")
        assert "waited 0.5 s" in message
        # The CLI: one line, exit 1, the work not done.
        result = run_manage("migrate", env=fixture_env(db_url, MIGRATE_LOCK_TIMEOUT="1"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"CommandError: another migrate is running on {make_url(db_url).render_as_string(hide_password=True)}; "
        "waited 1 s for its lock (MIGRATE_LOCK_TIMEOUT). Try again when it has finished."
    ]
    password = make_url(db_url).password
    if password:
        assert password not in message and password not in result.stderr
    assert "projects" not in table_names(db_url)
    # Released at exit: the next migrate runs (through the documented public function).
    plan = project.migrate_database(fixture_settings)
    assert len(plan.steps) == 8 and version_rows(db_url) == ["0008"]


HOLDER = textwrap.dedent("""
    import time
    from project.core.runner import migrator
    from project.core.conf import load_settings

    with migrator.locked_connection(load_settings()):
        print("locked", flush=True)
        time.sleep(300)
""")


def test_a_killed_holder_does_not_block_the_next_migrate(fixture_settings, db_url: str) -> None:
    env = {**os.environ, **fixture_env(db_url)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(MigrationError):
            with migrator.locked_connection(fixture_settings, timeout=0.2):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)  # no chance to release anything itself
        holder.wait()
    # The server ends the dead session (and the kernel drops its flock) soon after; the timeout
    # only bounds a hang, the test does not depend on how soon.
    with migrator.locked_connection(fixture_settings, timeout=60):
        pass
    plan = project.migrate_database(fixture_settings)
    assert [step.revision for step in plan.steps][-1] == "0008"
