"""A problem `check` reports: one line, with file:line where there is one, a rule id and a level.

Lint rules are silenced by `# check: ignore[ID]` on the line, `# check: ignore-file[ID]` in the file, or the
SILENCED_CHECKS setting; warnings are shown, only errors fail `check`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from project.core.conf import project_dir


@dataclass(frozen=True)
class Problem:
    message: str
    path: Path | None = None
    line: int | None = None
    # Lint rules have an id (silenced by `# check: ignore[ID]` on the line, `# check: ignore-file[ID]` in the
    # file, or the SILENCED_CHECKS setting) and a level: warnings are shown; only errors fail `check`.
    rule: str | None = None
    level: str = "error"

    def __str__(self) -> str:
        text = self.message + (f" [{self.rule}]" if self.rule else "")
        if self.level == "warning":
            text = f"warning: {text}"
        if self.path is None:
            return text
        where = relative(self.path) + (f":{self.line}" if self.line else "")
        return f"{where}: {text}"



def relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(project_dir()))
    except ValueError:
        return str(path)


def silenced_in_file(problem: Problem) -> bool:
    try:
        source = problem.path.read_text(encoding="utf-8") if problem.path else ""
    except OSError:
        return False
    return problem.rule in silences(source, problem.line or 0)


def silences(source: str, line: int) -> set[str]:
    """Rule ids silenced for `line`: `# check: ignore[P101, P103]` on that line, `# check: ignore-file[...]`."""
    lines = source.splitlines()
    found: set[str] = set()
    for match in re.finditer(r"#\s*check:\s*ignore-file\[([^\]]*)\]", source):
        found.update(r.strip() for r in match.group(1).split(","))
    if 0 < line <= len(lines):
        on_line = re.search(r"#\s*check:\s*ignore\[([^\]]*)\]", lines[line - 1])
        if on_line:
            found.update(r.strip() for r in on_line.group(1).split(","))
    return found
