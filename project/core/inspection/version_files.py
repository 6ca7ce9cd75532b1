"""The version files as `check` reads them: identity (revision, down_revision, labels) and lint facts, with `ast`,
so one broken file cannot hide the others. Parsing and linting a long history is most of what `check` costs, so
the facts are cached per file text and rules (.cache/, like project.core.history.scratch).
"""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from project.core.conf import cache_dir, migrations_dir, write_cache_file
from project.core.inspection import concurrently, data_types, portability, portable_sql
from project.core.inspection.identity import identity
from project.core.inspection.problem import Problem


@dataclass
class VersionFile:
    path: Path
    parsed: bool
    revision: str | None = None
    revision_line: int | None = None
    down_revisions: tuple[str, ...] = ()
    down_line: int | None = None
    error: Problem | None = None
    lint: list[Problem] = field(default_factory=list)
    # Constraint and index names the file creates, and the ones it drops by name ([name, line] pairs).
    names: dict[str, list[Any]] = field(default_factory=dict)
    branch_labels: list[str] = field(default_factory=list)
    # Column ops and lightweight-table columns, for P111 (project.core.inspection.data_types).
    data_types: dict[str, Any] = field(default_factory=dict)


def versions_dir(settings: Any = None) -> Path:
    # Alembic's script_location is migrations_dir(settings) (project.core.history.scripts.alembic_config).
    return migrations_dir(settings) / "versions"


# What a file's analysis depends on: its text and these rules. Parsing and linting a long history is
# most of what `check` costs, so the results are kept per file text (.cache/, like project.core.history.scratch).
FACTS_CACHE: Path | None = None  # default: <BASE_DIR>/.cache/check-files.json


def _facts_path() -> Path:
    return FACTS_CACHE or cache_dir() / "check-files.json"



# What the facts depend on besides a file's text: the modules that produce them.
_RULE_MODULES = (__file__, portability.__file__, data_types.__file__, concurrently.__file__, portable_sql.__file__)


def read_version_files(directory: Path) -> list[VersionFile]:
    """Every version file's identity (revision, down_revision) and portability problems."""
    rules = hashlib.sha256(b"".join(Path(module).read_bytes() for module in _RULE_MODULES)).digest()
    cached = _load_facts()
    seen: dict[str, dict[str, Any]] = {}
    files = []
    for path in sorted(p for p in directory.glob("*.py") if not p.name.startswith("_")):
        data = path.read_bytes()
        key = hashlib.sha256(rules + data).hexdigest()
        facts = cached.get(key) or _analyse(path, data.decode("utf-8"))
        seen[key] = facts
        files.append(_from_facts(path, facts))
    if seen.keys() - cached.keys():
        _store_facts({**cached, **seen} if len(cached) < 4 * len(seen) + 100 else seen)
    return files


def _analyse(path: Path, source: str) -> dict[str, Any]:
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        return {"parsed": False, "error": [f"syntax error: {exc.msg}", exc.lineno], "lint": []}
    facts: dict[str, Any] = {"parsed": True, "error": None, **identity(tree)}
    facts["lint"] = [[p.message, p.line, p.rule, p.level] for p in portability.lint(path, tree, source)]
    facts["names"] = portability.constraint_names(tree)
    facts["data_types"] = data_types.file_facts(tree)
    return facts


def _from_facts(path: Path, facts: dict[str, Any]) -> VersionFile:
    error = facts.get("error")
    return VersionFile(
        path, facts["parsed"], facts.get("revision"), facts.get("revision_line"),
        tuple(facts.get("down_revisions", ())), facts.get("down_line"),
        Problem(error[0], path, error[1]) if error else None,
        [Problem(message, path, line, *rest) for message, line, *rest in facts["lint"]],
        facts.get("names", {"created": [], "dropped": []}),
        facts.get("branch_labels", []),
        facts.get("data_types", {}),
    )


def _load_facts() -> dict[str, dict[str, Any]]:
    try:
        facts: dict[str, dict[str, Any]] = json.loads(_facts_path().read_text())
        return facts
    except (OSError, ValueError):
        return {}


def _store_facts(facts: dict[str, dict[str, Any]]) -> None:
    write_cache_file(_facts_path(), facts)
