"""`manage.py shell`, the application's own command found through COMMAND_PACKAGES, driven through a real
pseudo-terminal: the settings, an engine and a session are ready in the namespace."""

from __future__ import annotations

import os
import sys

import pexpect
from conftest import ROOT
from sqlalchemy import make_url

from project.core.runner import migrator


def test_shell_has_settings_engine_and_session_ready(settings, db_url: str) -> None:
    migrator.migrate(settings)
    env = {**os.environ, "DEV_DATABASE_URL": db_url, "SETTINGS_MODULE": "dev", "NO_COLOR": "1", "TERM": "dumb"}
    child = pexpect.spawn(sys.executable, [str(ROOT / "manage.py"), "shell", "-i", "python"], cwd=str(ROOT),
                          env=env, encoding="utf-8", timeout=60)
    try:
        child.expect("Settings: settings.dev; database: ")
        child.expect(">>> ")
        child.sendline("session.add(User(email='a@example.com', name='A')); session.commit()")
        child.expect(">>> ")
        child.sendline("print('users:', session.scalar(sa.select(sa.func.count()).select_from(User)))")
        child.expect("users: 1")
        child.expect(">>> ")
        child.sendline("print('dialect:', engine.dialect.name, settings.module_name)")
        child.expect(f"dialect: {make_url(db_url).get_backend_name()} settings.dev")
        child.expect(">>> ")
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
