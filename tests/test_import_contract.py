"""The boundary `make test` enforces: project.core (the tool) never imports project.app (the demo).

The contract lives in pyproject.toml ([tool.importlinter]); `lint-imports` checks it. The second test
proves it can fail: a copy of the package in which a tool module imports the app must be refused.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    # --no-cache: a cache filled from the real tree must not answer for the copy (and vice versa).
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_real_tree_keeps_the_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "project.core must not import project.app KEPT" in result.stdout


def test_a_tool_module_that_imports_the_app_breaks_it(tmp_path: Path) -> None:
    copy = tmp_path / "tree"
    shutil.copytree(ROOT / "project", copy / "project", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    offending = copy / "project" / "core" / "safety.py"
    offending.write_text(offending.read_text() + "\nimport project.app.models  # noqa: E402\n")

    result = lint_imports(copy)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "project.core must not import project.app BROKEN" in output
    # The report names the offending import: which module, which line.
    assert "project.core.safety -> project.app.models (l." in output, output
