"""Helpers for tests that need a different history: a copy of migrations/ in tmp_path, and a settings
module pointing MIGRATIONS_DIR at it, so the real CLI runs on the copy (the real versions stay untouched).

`MigrationsCopy(tmp_path)` copies the project's own history; `fixture_copy(tmp_path)` copies the fixture
application's (tests/fixture_app), with TARGET_METADATA on its models: the tool's tests use that one.
"""

from __future__ import annotations

import os
import shutil
import textwrap
import uuid
from pathlib import Path

from conftest import ROOT, TESTS_DIR, run_manage

VERSION_TEMPLATE = '''"""{message}

Revision ID: {rev}
Revises: {down}
"""
import sqlalchemy as sa
from alembic import op

revision = "{rev}"
down_revision = {down_repr}
branch_labels = None
depends_on = None


def upgrade() -> None:
{upgrade}


def downgrade() -> None:
{downgrade}
'''


# A statement that does nothing, without being the empty `pass` that `check` flags in a downgrade.
NOTHING = "op.get_context()"


class MigrationsCopy:
    def __init__(self, tmp_path: Path, base: str = "dev", source: Path | None = None,
                 settings_package: str = "settings"):
        self.root = tmp_path / "migrations"
        # Links (the fixture's env.py) are copied as the files they point at.
        shutil.copytree(source or ROOT / "migrations", self.root, ignore=shutil.ignore_patterns("__pycache__"))
        self.versions = self.root / "versions"
        self.module = f"mig_settings_{uuid.uuid4().hex[:8]}"
        (tmp_path / f"{self.module}.py").write_text(
            f"from {settings_package}.{base} import *  # noqa\nMIGRATIONS_DIR = {str(self.root)!r}\n"
        )
        self.pythonpath = str(tmp_path)

    def add(self, rev: str, down: str | tuple[str, ...] | None, upgrade: str = NOTHING, downgrade: str = NOTHING,
            message: str = "test revision", filename: str | None = None) -> Path:
        path = self.versions / (filename or f"{rev}_test.py")
        path.write_text(VERSION_TEMPLATE.format(
            rev=rev, down=down, down_repr=repr(down), message=message,
            upgrade=textwrap.indent(textwrap.dedent(upgrade).strip(), "    "),
            downgrade=textwrap.indent(textwrap.dedent(downgrade).strip(), "    "),
        ))
        return path

    def env(self, db_url: str | None = None, **extra: str) -> dict[str, str]:
        # tests/ too: a copy of the fixture application's history imports its models and settings from there.
        env = {"SETTINGS_MODULE": self.module, "PYTHONPATH": os.pathsep.join([self.pythonpath, str(TESTS_DIR)]),
               **extra}
        if db_url:
            env["DEV_DATABASE_URL"] = db_url
        return env

    def manage(self, *args: str, db_url: str | None = None, env: dict[str, str] | None = None, **kwargs):
        return run_manage(*args, env={**self.env(db_url), **(env or {})}, **kwargs)


def fixture_copy(tmp_path: Path, base: str = "dev") -> MigrationsCopy:
    """A copy of the fixture application's history (projects/tasks, 0001..0008) with settings based on
    fixture_app.settings.<base>: the models are the fixture's, the history is the copy."""
    return MigrationsCopy(tmp_path, base, source=TESTS_DIR / "fixture_app" / "migrations",
                          settings_package="fixture_app.settings")


def one_clean_line(result, *secrets: str) -> str:
    """Assert the Django-style failure contract; return the line."""
    output = result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode in (1, 2), output
    assert "Traceback" not in output, output
    assert len(lines) == 1, output
    for secret in secrets:
        if secret:
            assert secret not in output, output
    return lines[0]
