"""Django's argv rules, plus the options every command takes before the command (issue 10, item 5).

`manage.py -v 2 showmigrations` used to fail with "Unknown command: '2'". The split itself is tested
in-process; the real CLI shows the contract: it runs the right command with the right options, and
an unknown option before the command is one line and exit status 2.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import run_manage
from migcopy import one_clean_line

from project.core.management import split_argv


@pytest.mark.parametrize(("argv", "expected"), [
    (["migrate"], ([], "migrate", [])),
    (["-v", "2", "showmigrations"], (["-v", "2"], "showmigrations", [])),
    (["-v2", "showmigrations", "--plan"], (["-v2"], "showmigrations", ["--plan"])),
    (["--verbosity=0", "migrate"], (["--verbosity=0"], "migrate", [])),
    (["--settings", "prod", "migrate", "--plan"], (["--settings", "prod"], "migrate", ["--plan"])),
    (["--settings=dev", "-v", "0", "migrate"], (["--settings=dev", "-v", "0"], "migrate", [])),
    (["--traceback", "--no-color", "check"], (["--traceback", "--no-color"], "check", [])),
    # What follows the command is the command's own, dashes or not.
    (["dbshell", "--", "-v", "2"], ([], "dbshell", ["--", "-v", "2"])),
    (["--help"], ([], "--help", [])),
    ([], ([], None, [])),
])
def test_split_argv(argv: list[str], expected: tuple) -> None:
    assert split_argv(argv) == expected


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"SETTINGS_MODULE": "dev", "DEV_DATABASE_URL": f"sqlite:///{tmp_path / 'dev.sqlite3'}", **extra}


def _versions(url: str) -> list[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return list(connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())
    finally:
        engine.dispose()


def test_verbosity_before_the_command(tmp_path: Path) -> None:
    result = run_manage("-v", "2", "showmigrations", "--plan", env=_env(tmp_path))
    assert result.returncode == 0, result.stderr
    # -v 2 reached showmigrations: --plan shows each revision's parent only from verbosity 2.
    assert "[ ]  0002 " in result.stdout and "... (parent: 0001)" in result.stdout


def test_settings_before_the_command(tmp_path: Path) -> None:
    prod_db = tmp_path / "prod.sqlite3"
    # prod was chosen: without its URL it refuses to load...
    refused = run_manage("--settings", "prod", "migrate", "--plan", env=_env(tmp_path, PROD_DATABASE_URL=""))
    assert "PROD_DATABASE_URL is not set" in one_clean_line(refused)
    assert refused.returncode == 2
    # ...and with it, the plan is read from prod's database, not dev's.
    result = run_manage("--settings", "prod", "migrate", "--plan",
                        env=_env(tmp_path, PROD_DATABASE_URL=f"sqlite:///{prod_db}"))
    assert result.returncode == 0, result.stderr
    assert "Planned operations:" in result.stdout and "  Apply 0008 " in result.stdout
    assert not (tmp_path / "dev.sqlite3").exists()


def test_settings_and_verbosity_before_the_command(tmp_path: Path) -> None:
    env = _env(tmp_path, SETTINGS_MODULE="prod", PROD_DATABASE_URL="")  # --settings must win over it
    result = run_manage("--settings=dev", "-v", "0", "migrate", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # -v 0 reached migrate
    assert _versions(f"sqlite:///{tmp_path / 'dev.sqlite3'}") == ["0008"]


@pytest.mark.parametrize("argv", [["--frobnicate", "migrate"], ["-x", "showmigrations"], ["--settings"]])
def test_unknown_or_incomplete_option_before_the_command(argv: list[str], tmp_path: Path) -> None:
    result = run_manage(*argv, env=_env(tmp_path))
    line = one_clean_line(result)
    assert line.startswith("CommandError: ") and argv[0] in line
    assert result.returncode == 2
    assert not (tmp_path / "dev.sqlite3").exists()
