"""`poetry install` (Poetry 2) and `uv sync` work from a fresh clone (issue 10, item 5).

Poetry 2 used to stop with "No file/folder found for package fastapi-manage": it tried to install the
project itself as a package. The project is one to clone, not a library: both tools install its
dependencies only, and the code runs from the clone.

A fresh clone here is the files git tracks, copied as they are in the work tree (what a commit would
hold). Poetry and uv come from PyPI into a throwaway venv. Each step has a timeout; with warm package
caches the whole file took 45 s here (poetry install 29 s, uv sync 10 s, the tools' venv 5 s).

The clone migrates its own history, whatever it is (the demo's, or an empty one after start_project.py),
and the fixture application's (tests/fixture_app), so the check holds with and without the demo.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

STEP_TIMEOUT = 600  # seconds per install step: a guard against a hung download, never asserted on


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                            timeout=STEP_TIMEOUT)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway venv holding poetry and uv, from PyPI."""
    venv = tmp_path_factory.mktemp("tools") / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=ROOT)
    # uv (one wheel, through our pip), then poetry through uv: several times faster than pip alone.
    _run([sys.executable, "-m", "pip", "install", "-q", "--target", str(venv / "uv"), "uv"], cwd=ROOT)
    uv = venv / "uv" / "bin" / "uv"
    _run([str(uv), "pip", "install", "-q", "--python", str(venv / "bin" / "python"), "poetry>=2"], cwd=ROOT)
    (venv / "bin" / "uv").symlink_to(uv)
    return venv / "bin"


def fresh_clone(destination: Path) -> Path:
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True)
    for name in filter(None, tracked.stdout.split("\0")):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def _revisions(listing: str, mark: str) -> set[str]:
    """The revision ids showmigrations lists with `mark` ("X" applied, " " not)."""
    prefix = f" [{mark}] "
    return {line[len(prefix):].split()[0] for line in listing.splitlines() if line.startswith(prefix)}


def _works_from_the_clone(python: Path, clone: Path) -> None:
    """The environment runs the project's commands and its tests' tools; the project is not installed in it."""
    # The project's own settings and history, whatever it holds (the demo's eight revisions, or none):
    # migrate applies every revision showmigrations listed as unapplied.
    env = {"SETTINGS_MODULE": "dev", "DEV_DATABASE_URL": f"sqlite:///{clone / 'dev.sqlite3'}",
           "PYTHONPATH": "", "NO_COLOR": "1"}
    before = _run([str(python), "manage.py", "showmigrations"], cwd=clone, env=env).stdout
    _run([str(python), "manage.py", "migrate", "-v0"], cwd=clone, env=env)
    after = _run([str(python), "manage.py", "showmigrations"], cwd=clone, env=env).stdout
    assert _revisions(after, "X") == _revisions(before, " ") and not _revisions(after, " "), (before, after)
    # The fixture application's history (in the clone's tests/), so that there is something to apply.
    fixture = {**env, "SETTINGS_MODULE": "fixture_app.settings.dev", "PYTHONPATH": str(clone / "tests"),
               "DEV_DATABASE_URL": f"sqlite:///{clone / 'fixture.sqlite3'}"}
    _run([str(python), "manage.py", "migrate", "-v0"], cwd=clone, env=fixture)
    listed = _run([str(python), "manage.py", "showmigrations"], cwd=clone, env=fixture).stdout
    assert " [X] 0008 " in listed and not _revisions(listed, " "), listed
    _run([str(python), "-c", "import pytest, httpx, mypy"], cwd=clone)
    names = _run([str(python), "-c", "import importlib.metadata as m; "
                                     "print(*sorted(d.metadata['Name'] for d in m.distributions()))"], cwd=clone)
    assert "fastapi-manage" not in names.stdout.split(), names.stdout


def test_poetry_install_from_a_fresh_clone(tools: Path, tmp_path: Path) -> None:
    clone = fresh_clone(tmp_path / "clone")
    # This machine's PyPI access serves the simple index only, not the JSON API Poetry reads by
    # default: in the throwaway clone, point Poetry at the same packages through the simple index.
    env = {"POETRY_VIRTUALENVS_IN_PROJECT": "true", "POETRY_NO_INTERACTION": "1"}
    _run([str(tools / "poetry"), "source", "add", "--priority=primary", "pypi-simple", "https://pypi.org/simple/"],
         cwd=clone, env=env)
    _run([str(tools / "poetry"), "install", "--extras", "test"], cwd=clone, env=env)
    _works_from_the_clone(clone / ".venv" / "bin" / "python", clone)


def test_uv_sync_from_a_fresh_clone(tools: Path, tmp_path: Path) -> None:
    clone = fresh_clone(tmp_path / "clone")
    _run([str(tools / "uv"), "sync", "--extra", "test"], cwd=clone, env={"UV_PYTHON": sys.executable})
    _works_from_the_clone(clone / ".venv" / "bin" / "python", clone)
