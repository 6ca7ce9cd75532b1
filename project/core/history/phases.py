"""A revision's phase: what it does to the code that is running while it is applied (docs/phases.md).

`phase = "expand"`: code written before it keeps working (new tables, nullable or defaulted columns, indexes).
`phase = "contract"`: code written before it breaks (drops, renames, narrowing, NOT NULL): `migrate` applies it
only once no live instance of the application runs code older than it (project.core.runner.fleet). A module-level
variable of the version file, as `branch_labels` is; a revision without one has no phase and is run as before.
"""

from __future__ import annotations

from typing import Any

from project.core.errors import MigrationError, relative_path

EXPAND = "expand"
CONTRACT = "contract"
PHASES = (EXPAND, CONTRACT)


def declared_phase(script: Any) -> str | None:
    """The phase a revision's file declares, None when it declares none; MigrationError for another value."""
    phase = getattr(script.module, "phase", None)
    if phase is None or phase in PHASES:
        return phase
    raise MigrationError(f"{relative_path(script.path)}: phase = {phase!r} is not a phase: write "
                         "phase = \"expand\" or phase = \"contract\" (or remove the line).")
