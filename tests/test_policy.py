"""One policy for every caller: manage.py migrate, project.migrate_database() and start-up migrations all go
through migrator.migrate(), so CONFIRM_DESTRUCTIVE refuses a destructive step whoever asks."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import FIXTURE_SETTINGS, TESTS_DIR
from servers import app_env, find_free_port, serve, version_rows

import project
from project.core.errors import DestructiveStepsRefused
from project.core.management import call_command
from project.core.runner import migrator

REFUSAL = "Refusing to run destructive steps (CONFIRM_DESTRUCTIVE is on): apply 0008 drops column tasks.legacy_flag"


def _columns(db_url: str, table: str) -> set[str]:
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        return {c["name"] for c in sa.inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


@pytest.fixture
def at_0007(fixture_settings, db_url: str) -> str:
    """The database at 0007: the only pending step, 0008, drops tasks.legacy_flag."""
    migrator.migrate(fixture_settings, "0007")
    assert "legacy_flag" in _columns(db_url, "tasks")
    return db_url


def test_startup_migration_refuses_a_destructive_step(at_0007: str, tmp_path: Path) -> None:
    port = find_free_port()
    args = [sys.executable, "-m", "uvicorn", "project.app.asgi:app", "--host", "127.0.0.1", "--port", str(port)]
    env = app_env(at_0007, migrate_on_startup=True, settings_module=FIXTURE_SETTINGS, CONFIRM_DESTRUCTIVE="1",
                  PYTHONPATH=str(TESTS_DIR))
    with serve(args, env, tmp_path / "uvicorn.log", port) as server:
        deadline = time.monotonic() + 60
        while server.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        log = server.log
        # The worker does not start serving a schema it could not bring to head.
        assert server.process.poll() not in (None, 0), log
    assert "Application startup complete." not in log, log
    failures = [line for line in log.splitlines() if "Start-up migrations failed" in line]
    assert len(failures) == 1, log
    assert REFUSAL in failures[0] and "`manage.py migrate --allow-destructive`" in failures[0], log
    assert "Traceback" not in log, log
    # Nothing applied.
    assert version_rows(at_0007) == ["0007"]
    assert "legacy_flag" in _columns(at_0007, "tasks")


def test_migrate_database_follows_the_same_policy(at_0007: str, monkeypatch) -> None:
    monkeypatch.setenv("CONFIRM_DESTRUCTIVE", "1")
    from project.core.conf import load_settings

    confirming = load_settings(FIXTURE_SETTINGS)
    with pytest.raises(DestructiveStepsRefused, match="apply 0008 drops column tasks.legacy_flag"):
        project.migrate_database(confirming)
    assert version_rows(at_0007) == ["0007"]
    # --fake runs nothing, so it is never refused; allow_destructive is the explicit way through.
    plan = project.migrate_database(confirming, allow_destructive=True)
    assert [step.revision for step in plan.steps] == ["0008"]
    assert version_rows(at_0007) == ["0008"]
    assert "legacy_flag" not in _columns(at_0007, "tasks")


def test_manage_migrate_refuses_then_applies_with_allow_destructive(at_0007: str, monkeypatch) -> None:
    from io import StringIO

    from project.core.management.base import CommandError

    monkeypatch.setenv("CONFIRM_DESTRUCTIVE", "1")
    with pytest.raises(CommandError, match=re.escape(REFUSAL)):
        call_command("migrate", stdout=StringIO())
    assert version_rows(at_0007) == ["0007"]
    out = StringIO()
    call_command("migrate", "--allow-destructive", stdout=out)
    assert "Applying 0008 Drop tasks.legacy_flag... OK" in out.getvalue()
    assert version_rows(at_0007) == ["0008"]
