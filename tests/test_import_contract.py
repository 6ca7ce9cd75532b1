"""The boundaries `make test` enforces on the tool's imports.

- project.core (the tool) never imports project.app (the demo);
- the tool's rooms are layers (pyproject.toml, contract core-layers): commands on top, then serving | offline,
  the runner, inspection, authoring, the history, and the foundation at the bottom; a room imports only rooms
  below it;
- no module of `project` imports itself through others: the import graph, function-level imports included
  (`if TYPE_CHECKING:` ones left out, as at run time), has no cycle.

The contracts live in pyproject.toml ([tool.importlinter]); `lint-imports` checks them. Each check is also
shown failing: a copy of the package with a forbidden import must be refused, naming the import.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
from conftest import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    # --no-cache: a cache filled from the real tree must not answer for the copy (and vice versa).
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=120)


def import_cycles(root: Path) -> list[list[str]]:
    """Every set of modules of `project` (under `root`) that import one another in a circle (Tarjan's strongly
    connected components of the import graph, iteratively), each sorted; [] when there is none."""
    sys.path.insert(0, str(root))
    saved = {name: module for name, module in sys.modules.items() if name == "project" or name.startswith("project.")}
    for name in saved:
        del sys.modules[name]  # grimp finds the package through its import system: the copy's, not ours
    try:
        graph = grimp.build_graph("project", include_external_packages=False, exclude_type_checking_imports=True,
                                  cache_dir=None)
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n == "project" or n.startswith("project.")]:
            del sys.modules[name]
        sys.modules.update(saved)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(edges[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges.get(child, []))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def copy_tree(tmp_path: Path) -> Path:
    copy = tmp_path / "tree"
    shutil.copytree(ROOT / "project", copy / "project", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


def add_import(module: Path, statement: str) -> None:
    """Append a function that imports `statement`: a function-level import counts as much as a top-level one."""
    module.write_text(module.read_text() + f"\n\ndef _added_for_the_test() -> None:\n    {statement}\n")


def test_the_real_tree_keeps_the_contracts() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "project.core must not import project.app KEPT" in result.stdout
    assert " ".join(result.stdout.split()).count("KEPT") == 2, result.stdout
    assert "BROKEN" not in result.stdout


def test_a_tool_module_that_imports_the_app_breaks_it(tmp_path: Path) -> None:
    copy = copy_tree(tmp_path)
    offending = copy / "project" / "core" / "inspection" / "destructive.py"
    offending.write_text(offending.read_text() + "\nimport project.app.models  # noqa: E402\n")

    result = lint_imports(copy)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "project.core must not import project.app BROKEN" in output
    # The report names the offending import: which module, which line.
    assert "project.core.inspection.destructive -> project.app.models (l." in output, output


def test_an_upward_import_breaks_the_layers(tmp_path: Path) -> None:
    """The history (a lower room) importing the runner (a higher one), even inside a function."""
    copy = copy_tree(tmp_path)
    add_import(copy / "project" / "core" / "history" / "checksums.py", "from project.core.runner import migrator")

    result = lint_imports(copy)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output
    assert "project.core must not import project.app KEPT" in output  # only the layers are broken
    assert "project.core.history is not allowed to import project.core.runner" in output, output
    assert "project.core.history.checksums -> project.core.runner.migrator (l." in output, output


def test_independent_rooms_do_not_import_each_other(tmp_path: Path) -> None:
    copy = copy_tree(tmp_path)
    add_import(copy / "project" / "core" / "offline.py", "from project.core.serving import startup")

    output = " ".join((lambda r: r.stdout + r.stderr)(lint_imports(copy)).split())
    assert "project.core.offline is not allowed to import project.core.serving" in output, output


def test_the_import_graph_has_no_cycle() -> None:
    assert import_cycles(ROOT) == []


def test_a_cycle_is_found(tmp_path: Path) -> None:
    """scripts <- plan already; plan's module imported back from scripts closes a circle of two."""
    copy = copy_tree(tmp_path)
    add_import(copy / "project" / "core" / "history" / "scripts.py", "from project.core.history import plan")

    cycles = import_cycles(copy)
    assert any({"project.core.history.plan", "project.core.history.scripts"} <= set(c) for c in cycles), cycles
