"""Django's argv rules, plus the options every command takes before the command (issue 10, item 5).

`manage.py -v 2 showmigrations` used to fail with "Unknown command: '2'". The split itself is tested
in-process; the real CLI shows the contract: it runs the right command with the right options, and
an unknown option before the command is one line and exit status 2.

`--settings prod` / `--settings=dev` are the project's own settings (settings/): what the tests assert about
them holds whatever the project's history is. What needs revisions runs on the fixture application's history
(tests/fixture_app, 0001..0008): the fixture's dev settings, or a module in tmp_path built on the project's
prod/dev settings with MIGRATIONS_DIR and TARGET_METADATA on the fixture application.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import TESTS_DIR, fixture_env, run_manage
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
    return fixture_env(f"sqlite:///{tmp_path / 'dev.sqlite3'}", **extra)


def _on_fixture_history(tmp_path: Path, base: str) -> str:
    """A settings module (importable with _env's PYTHONPATH) that is the project's settings.<base> on the
    fixture application's history and models; returns its name."""
    module = f"argv_{base}_on_fixture"
    fixture = TESTS_DIR / "fixture_app"
    (tmp_path / f"{module}.py").write_text(
        f"from settings.{base} import *  # noqa\n"
        f"MIGRATIONS_DIR = {str(fixture / 'migrations')!r}\n"
        f"TARGET_METADATA = 'fixture_app.models:Base.metadata'\n"
    )
    return module


def _with_tmp_path(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {**env, "PYTHONPATH": os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])}


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
    # ...and with it, the plan is read from prod's database, not dev's: the project's own history (maybe
    # empty), then the fixture's eight revisions through prod's settings.
    env = _with_tmp_path(_env(tmp_path, PROD_DATABASE_URL=f"sqlite:///{prod_db}"), tmp_path)
    result = run_manage("--settings", "prod", "migrate", "--plan", env=env)
    assert result.returncode == 0, result.stderr
    assert "Planned operations:" in result.stdout
    on_fixture = run_manage("--settings", _on_fixture_history(tmp_path, "prod"), "migrate", "--plan", env=env)
    assert on_fixture.returncode == 0, on_fixture.stderr
    assert "Planned operations:" in on_fixture.stdout and "  Apply 0008 " in on_fixture.stdout
    assert not (tmp_path / "dev.sqlite3").exists()


def test_settings_and_verbosity_before_the_command(tmp_path: Path) -> None:
    env = _env(tmp_path, SETTINGS_MODULE="prod", PROD_DATABASE_URL="")  # --settings must win over it
    # The project's dev settings and its own history (maybe empty)...
    result = run_manage("--settings=dev", "-v", "0", "migrate",
                        env={**env, "DEV_DATABASE_URL": f"sqlite:///{tmp_path / 'project.sqlite3'}"})
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # -v 0 reached migrate
    # ...then on the fixture's history: migrate went to dev's database, to the head.
    result = run_manage(f"--settings={_on_fixture_history(tmp_path, 'dev')}", "-v", "0", "migrate",
                        env=_with_tmp_path(env, tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert _versions(f"sqlite:///{tmp_path / 'dev.sqlite3'}") == ["0008"]


@pytest.mark.parametrize("argv", [["--frobnicate", "migrate"], ["-x", "showmigrations"], ["--settings"]])
def test_unknown_or_incomplete_option_before_the_command(argv: list[str], tmp_path: Path) -> None:
    result = run_manage(*argv, env=_env(tmp_path))
    line = one_clean_line(result)
    assert line.startswith("CommandError: ") and argv[0] in line
    assert result.returncode == 2
    assert not (tmp_path / "dev.sqlite3").exists()
