"""manage.py as people use it: settings selection, help, clean errors, offline sqlmigrate."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT, run_fixture_manage, run_manage

from project.core.conf import ImproperlyConfigured, load_settings

HEAVY = ("sqlalchemy", "alembic", "fastapi", "uvicorn", "starlette", "pydantic")
# A URL nobody can use: wrong password, a host that cannot resolve (.invalid is reserved).
UNREACHABLE = {
    "postgresql": "postgresql+psycopg2://app:s3cret-pw@db.invalid:5432/app",
    "mysql": "mysql+pymysql://app:s3cret-pw@db.invalid:3306/app",
}


def imported_modules(*argv: str) -> set[str]:
    code = (
        "import json, runpy, sys\n"
        f"sys.argv = {['manage.py', *argv]!r}\n"
        "try:\n    runpy.run_path('manage.py', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return set(json.loads(out.splitlines()[-1]))


@pytest.mark.parametrize("argv", [("help",), ("migrate", "--help"), ("help", "sqlmigrate"), ()])
def test_help_imports_nothing_heavy(argv) -> None:
    assert not imported_modules(*argv) & set(HEAVY)


def test_help_lists_commands() -> None:
    result = run_manage("help")
    assert result.returncode == 0
    for name in ("migrate", "showmigrations", "sqlmigrate", "makemigrations"):
        assert f"    {name}\n" in result.stdout
    detail = run_manage("help", "migrate")
    assert "--plan" in detail.stdout and "--fake" in detail.stdout and detail.returncode == 0


def test_unknown_command() -> None:
    result = run_manage("migrat")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "CommandError: Unknown command: 'migrat'. Did you mean 'migrate'? Type 'manage.py help' for usage."
    )


@pytest.mark.parametrize("where", ["before", "after", "space"])
def test_unknown_settings_name(where) -> None:
    argv = {"before": ["--settings=nope", "showmigrations"], "after": ["showmigrations", "--settings=nope"],
            "space": ["showmigrations", "--settings", "nope"]}[where]
    result = run_manage(*argv)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "CommandError: Unknown settings 'nope'. Available: dev, prod, test (or a dotted path to an importable module)."
    )
    assert "Traceback" not in result.stderr


def test_prod_needs_its_url() -> None:
    result = run_manage("showmigrations", "--settings=prod", env={"PROD_DATABASE_URL": ""})
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "PROD_DATABASE_URL is not set" in result.stderr and "Traceback" not in result.stderr


def test_settings_selection(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("SETTINGS_MODULE", raising=False)
    monkeypatch.setenv("PROD_DATABASE_URL", UNREACHABLE["postgresql"])
    assert load_settings().module_name == "settings.dev"
    assert load_settings("prod").DATABASE_URL == UNREACHABLE["postgresql"]
    assert load_settings("settings.prod").module_name == "settings.prod"
    monkeypatch.setenv("SETTINGS_MODULE", "test")
    assert load_settings().module_name == "settings.test"
    with pytest.raises(ImproperlyConfigured, match="Available: dev, prod, test"):
        load_settings("staging")
    # dev's default SQLite file is an absolute path at the project root, whatever the working directory.
    monkeypatch.delenv("DEV_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    assert load_settings("dev").DATABASE_URL == f"sqlite:///{ROOT / 'dev.sqlite3'}"


def test_dotenv_is_read_and_environment_wins(tmp_path) -> None:
    # A copy of the project's settings package with its own .env beside it (the project root is the folder
    # that holds the settings package), run in a subprocess: the checkout's own .env is never written, so
    # tests running at the same time never read this one.
    import shutil

    shutil.copytree(ROOT / "settings", tmp_path / "settings", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / ".env").write_text(
        "DEV_DATABASE_URL=sqlite:////from/dotenv.sqlite3\nTEST_DATABASE_URL=mysql+pymysql://x:y@h/dotenv\n"
    )
    code = ("from project.core.conf import load_settings as ls, project_dir; "
            "print(project_dir(), ls('dev').DATABASE_URL, ls('test').DATABASE_URL)")
    env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
    env["TEST_DATABASE_URL"] = "mysql+pymysql://x:y@h/real"
    # The copy's settings first, this checkout's `project` after it.
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT)])
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.stdout.split() == [str(tmp_path.resolve()), "sqlite:////from/dotenv.sqlite3",
                                     "mysql+pymysql://x:y@h/real"], result.stderr


@pytest.mark.parametrize("dialect,expected", [
    ("postgresql", "CREATE TYPE task_state AS ENUM ('open', 'done')"),
    ("mysql", "ALTER TABLE tasks ADD COLUMN state ENUM('open','done') NOT NULL DEFAULT 'open'"),
])
def test_sqlmigrate_never_connects(dialect, expected) -> None:
    settings_name, variable = {
        "postgresql": ("fixture_app.settings.prod", "PROD_DATABASE_URL"),
        "mysql": ("fixture_app.settings.test", "TEST_DATABASE_URL"),
    }[dialect]
    # On the fixture application's history (tests/fixture_app): 0006 adds an enum column.
    result = run_fixture_manage("sqlmigrate", "0006", f"--settings={settings_name}",
                                env={variable: UNREACHABLE[dialect]})
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout
    assert "UPDATE alembic_version SET version_num='0006' WHERE alembic_version.version_num = '0005'" in result.stdout
    # The same settings cannot connect: proof that sqlmigrate did not try.
    failed = run_fixture_manage("showmigrations", f"--settings={settings_name}", env={variable: UNREACHABLE[dialect]})
    assert failed.returncode == 1
    assert "db.invalid" in failed.stderr and "s3cret-pw" not in failed.stderr + failed.stdout
    assert "Traceback" not in failed.stderr


def test_sqlmigrate_sqlite_without_database(tmp_path) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "db.sqlite3"
    result = run_fixture_manage("sqlmigrate", "0006", env={"DEV_DATABASE_URL": f"sqlite:///{missing}"})
    assert result.returncode == 0, result.stderr
    assert "ALTER TABLE tasks ADD COLUMN state VARCHAR(4) DEFAULT 'open' NOT NULL" in result.stdout
    assert not missing.parent.exists()
