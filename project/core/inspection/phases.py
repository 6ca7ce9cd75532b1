"""Which phase a revision's operations belong to, read with the destructive classifier (docs/phases.md).

Contract: what breaks code written before the revision: a table or column dropped or renamed, a column narrowed
or made NOT NULL, a NOT NULL column added without a default (old code's INSERTs do not fill it), a type or other
object dropped. Expand: what such code does not notice: tables, columns with a default or nullable, indexes and
constraints. makemigrations writes the inferred phase; `check` flags a revision whose declared phase its
operations contradict.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from project.core.history.backfill import BackfillOp, runs_backfills
from project.core.history.phases import CONTRACT, EXPAND, declared_phase
from project.core.inspection import destructive
from project.core.inspection.problem import Problem

# Findings that break old code (a dropped index or constraint, deleted rows: the old code still runs).
_CONTRACT_KINDS = {"table", "column", "column-change", "type", "object"}
# What old code does not notice, but new code needs: the phase's other half.
_EXPAND_KINDS = {"table", "column", "type"}


@dataclass
class Inference:
    """What a revision's operations say about its phase: the phrases on each side, and what could not be read."""

    contract: list[str] = field(default_factory=list)
    expand: list[str] = field(default_factory=list)
    unreadable: str | None = None

    @property
    def phase(self) -> str | None:
        """expand or contract; None when it cannot tell (unreadable SQL, or both at once)."""
        if self.unreadable or (self.contract and self.expand):
            return None
        return CONTRACT if self.contract else EXPAND


def infer(operations: Iterable[Any], dialect: str = "postgresql") -> Inference:
    """The phase of Alembic operations (autogenerate's, or a revision's as destructive.record_revision ran it)."""
    found = Inference()
    for operation in operations:
        try:
            effects = destructive.operation_effects(operation, dialect)
        except destructive.Unreadable as exc:
            found.unreadable = found.unreadable or str(exc)
            continue
        for effect in effects:
            if isinstance(effect, destructive.Finding) and effect.kind in _CONTRACT_KINDS:
                found.contract.append(effect.text)
            elif isinstance(effect, destructive.Renamed):
                found.contract.append(f"renames {effect.kind} {effect.table}"
                                      + (f".{effect.old}" if effect.kind == "column" else "") + f" to {effect.new}")
            elif isinstance(effect, destructive.Created) and effect.kind in _EXPAND_KINDS:
                found.expand.append(f"creates {effect.kind} " + ".".join(n for n in (effect.table, effect.name) if n))
        found.contract += _unfilled_not_null(operation)
    return found


def _unfilled_not_null(operation: Any) -> list[str]:
    """A NOT NULL column added without a server default, or one whose default goes (makemigrations' one-off
    default): INSERTs written before it do not name the column and fail."""
    from alembic.operations import ops

    if isinstance(operation, ops.OpContainer):
        return [text for child in operation.ops for text in _unfilled_not_null(child)]
    if isinstance(operation, ops.AddColumnOp) and not operation.column.nullable \
            and operation.column.server_default is None and not operation.column.primary_key:
        return [f"adds the NOT NULL column {operation.table_name}.{operation.column.name} without a default"]
    if isinstance(operation, ops.AlterColumnOp) and operation.modify_server_default is None \
            and operation.existing_server_default and operation.existing_nullable is False:
        return [f"removes the default of the NOT NULL column {operation.table_name}.{operation.column_name}"]
    return []


def revision_inference(script: Any, dialect: str = "postgresql") -> Inference:
    """The phase a revision's upgrade() shows, run offline under a recording Operations."""
    recorded = destructive.record_revision(script, True, dialect)
    found = infer(recorded.operations, dialect)
    if recorded.error:
        found.unreadable = f"its upgrade() cannot run without a database ({recorded.error})"
    return found


def phase_problems(script_directory: Any, silenced: set[str] | frozenset[str] = frozenset()) -> list[Problem]:
    """`check`: revisions whose declared phase their operations contradict (Z301: both phases in one revision;
    Z302: a contract operation in an expand revision; Z303: a backfill beside other operations). Revisions without
    a phase are not read (a history without phases is checked as before), except those that run a backfill."""
    from pathlib import Path

    from project.core.errors import MigrationError

    problems = []
    for script in script_directory.walk_revisions():
        path = Path(script.path)
        try:
            phase = declared_phase(script)
        except MigrationError as exc:
            problems.append(Problem(str(exc).split(": ", 1)[1], path))
            continue
        if runs_backfills(script):
            problems += _backfill_problems(script, path)
        if phase is None:
            continue
        found = revision_inference(script)
        if found.contract and found.expand:
            problems.append(Problem(
                f"revision {script.revision} is marked {phase} but mixes both phases: it "
                f"{', '.join(found.expand[:2])} (expand) and {', '.join(found.contract[:2])} (contract); split it "
                "into an expand revision and a contract revision after it", path, rule="Z301"))
        elif phase == EXPAND and found.contract:
            problems.append(Problem(
                f"revision {script.revision} is marked expand but {', '.join(found.contract[:3])}, which breaks "
                "the code still running before it: mark it phase = \"contract\", or move that to a contract "
                "revision", path, rule="Z302"))
    return [p for p in problems if p.rule not in silenced]


def _backfill_problems(script: Any, path: Any) -> list[Problem]:
    """Z303: a revision that runs a backfill and other operations. The backfill commits what ran before it
    (history.backfill), so after a kill mid-backfill the revision runs again over those operations' effects and
    fails ("already exists") instead of resuming."""
    recorded = destructive.record_revision(script, True, "postgresql")
    if all(isinstance(operation, BackfillOp) for operation in recorded.operations):
        return []
    return [Problem(f"revision {script.revision} runs a backfill beside other operations: the backfill commits "
                    "them first, and after a kill mid-backfill the revision would run them again instead of "
                    "resuming; move them to a revision of their own before it", path, rule="Z303")]
