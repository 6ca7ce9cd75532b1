"""The plan: which revisions a move from the database's heads to a target applies or unapplies, in order.

A squash crossed whole stands in for its range (project.core.history.squash). Django's executor makes its plan
the same way, from the graph alone, before anything connects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from alembic.script import Script, ScriptDirectory

from project.core.errors import MigrationError, relative_path
from project.core.history import squash
from project.core.history.scripts import check_known, resolve_revision


@dataclass
class Step:
    script: Script
    forwards: bool

    @property
    def revision(self) -> str:
        return self.script.revision

    @property
    def message(self) -> str:
        return (self.script.doc or "").strip().splitlines()[0] if self.script.doc else ""

    def __str__(self) -> str:
        return f"{self.revision} {self.message}".strip()


@dataclass
class Plan:
    current: str | None
    target: str | None
    steps: list[Step] = field(default_factory=list)
    script: ScriptDirectory | None = None  # the history the plan runs on when a squash stands in for a range

    @property
    def forwards(self) -> bool:
        return all(step.forwards for step in self.steps)


def make_plan(script: ScriptDirectory, heads: tuple[str, ...], target: str) -> Plan:
    """The revisions to apply (forwards) or unapply (backwards) to get from `heads` to `target`, in the order
    Alembic runs them, across branches. A target behind a current head is a downgrade, as in Django."""
    check_known(script, heads)
    view = squash.plan_script(script, heads, target)  # a squash crossed whole stands in for its range
    if view is not None:
        plan = make_plan(view, heads, target)
        plan.script = view
        return plan
    current = ", ".join(heads) if heads else None
    destination = resolve_revision(script, target)
    if destination is not None and set(_ids(script, destination)) == set(heads):
        return Plan(current, destination)
    if destination is None or _behind(script, destination, heads):
        down = script.iterate_revisions(heads, destination or "base", select_for_downgrade=True)
        return Plan(current, destination, [Step(s, False) for s in down])
    up = script.iterate_revisions(destination, heads, implicit_base=True)
    return Plan(current, destination, [Step(s, True) for s in reversed(list(up))])


def _ids(script: ScriptDirectory, destination: str) -> list[str]:
    return [rev.revision for rev in script.get_revisions(destination) if rev is not None]


def _behind(script: ScriptDirectory, destination: str, heads: tuple[str, ...]) -> bool:
    """Every revision `destination` names is applied already, and it is not where the database is."""
    if not heads:
        return False
    applied = {rev.revision for rev in script.iterate_revisions(heads, "base")}
    return all(rev in applied for rev in _ids(script, destination))


def failed_step(script: ScriptDirectory, start: str | None, end: str | None, done: int) -> Step | None:
    """The step of the run from `start` to `end` that was running when it failed, `done` steps in."""
    try:
        steps = make_plan(script, (start,) if start else (), end or "base").steps
    except MigrationError:
        return None
    return steps[done] if done < len(steps) else None


def describe_step(step: Step | None) -> str:
    """'revision 0004 (migrations/versions/0004_x.py)' for messages that must name the file."""
    if step is None:
        return "a revision"
    return f"revision {step.revision} ({relative_path(step.script.path)})"
