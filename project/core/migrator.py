"""What every caller of the migrations shares: manage.py commands, the app's lifespan, tests.

A thin layer over Alembic: it builds the Config from settings, works out the plan with
ScriptDirectory, and runs `alembic.command` on a connection it owns. `migrate()` is the one
sequence every caller goes through: lock, plan, destructive-step policy, run.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.util.exc import CommandError as AlembicCommandError
from sqlalchemy import Connection, event

from project.core import db
from project.core.conf import Settings, base_dir, migrations_dir


class MigrationError(Exception):
    """A migration request that cannot be carried out (bad target, several heads...)."""


class DestructiveStepsRefused(MigrationError):
    """CONFIRM_DESTRUCTIVE is on and the plan has a step that destroys data."""


def alembic_config(
    settings: Settings | None = None,
    *,
    connection: Connection | None = None,
    dialect_name: str | None = None,
    stdout: TextIO | None = None,
    output_buffer: TextIO | None = None,
    **configure_options: Any,
) -> Config:
    """Alembic's Config for these settings; env.py reads everything it needs from `attributes`."""
    cfg = Config(str(base_dir(settings) / "alembic.ini"), stdout=stdout or sys.stdout, output_buffer=output_buffer)
    cfg.set_main_option("script_location", str(migrations_dir(settings)))
    if settings is not None:
        cfg.attributes["settings"] = settings
    if connection is not None:
        cfg.attributes["connection"] = connection
    if dialect_name is not None:
        cfg.attributes["dialect_name"] = dialect_name
    cfg.attributes["configure_options"] = configure_options
    return cfg


def script_directory(cfg: Config | None = None) -> ScriptDirectory:
    return ScriptDirectory.from_config(cfg or alembic_config())


def single_head(script: ScriptDirectory) -> str:
    heads = script.get_heads()
    if len(heads) > 1:
        raise MigrationError(
            f"The history has {len(heads)} heads ({', '.join(sorted(heads))}): "
            "run `manage.py makemigrations --merge` to join them."
        )
    if not heads:
        raise MigrationError("The history has no revisions yet: run `manage.py makemigrations`.")
    return heads[0]


def current_heads(connection: Connection) -> tuple[str, ...]:
    """The revisions recorded in alembic_version; () on an empty database. Leaves no transaction open."""
    try:
        return tuple(MigrationContext.configure(connection).get_current_heads())
    finally:
        if connection.in_transaction():
            connection.rollback()


def resolve_revision(script: ScriptDirectory, target: str) -> str | None:
    """A revision id for `target`: head, zero/base (None), an id or a unique prefix of one."""
    if target in {"zero", "base"}:
        return None
    if target == "head":
        return single_head(script)
    exact = _lookup(script, target)
    if exact is not None and exact.revision == target:
        # A full id is a dict lookup: /health/ready resolves the head on every request.
        return target
    ids = [rev.revision for rev in script.walk_revisions()]
    matches = sorted(i for i in ids if i.startswith(target))
    if len(matches) == 1:
        return matches[0]
    if matches:
        shown = ", ".join(matches[:4]) + (", ..." if len(matches) > 4 else "")
        raise MigrationError(f"Ambiguous revision prefix '{target}': it matches {shown}. Give more characters.")
    raise MigrationError(f"Unknown revision '{target}'. `manage.py showmigrations` lists the revisions.")


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

    @property
    def forwards(self) -> bool:
        return all(step.forwards for step in self.steps)


def make_plan(script: ScriptDirectory, heads: tuple[str, ...], target: str) -> Plan:
    """The revisions to apply (forwards) or unapply (backwards) to get from `heads` to `target`."""
    if len(heads) > 1:
        raise MigrationError(f"The database records several heads ({', '.join(heads)}); migrate each branch.")
    current = heads[0] if heads else None
    target_rev = resolve_revision(script, target)
    if current is not None and _lookup(script, current) is None:
        raise MigrationError(
            f"The database is at revision {current}, which no version file defines: "
            "is this checkout older than the database?"
        )
    if target_rev == current:
        return Plan(current, target_rev)
    # The target is behind the current revision exactly when it is one of its ancestors: downgrade.
    if current is not None and (target_rev is None or _is_ancestor(script, target_rev, current)):
        down = list(script.iterate_revisions(current, target_rev or "base"))
        return Plan(current, target_rev, [Step(s, False) for s in down if s.revision != target_rev])
    up = list(script.iterate_revisions(target_rev, current or "base"))
    return Plan(current, target_rev, [Step(s, True) for s in reversed(up) if s.revision != current])


def _lookup(script: ScriptDirectory, rev: str) -> Script | None:
    try:
        return script.get_revision(rev)
    except AlembicCommandError:
        return None


def _is_ancestor(script: ScriptDirectory, candidate: str, descendant: str) -> bool:
    return any(s.revision == candidate for s in script.iterate_revisions(descendant, "base"))


@contextmanager
def connect(settings: Settings) -> Iterator[Connection]:
    """A synchronous connection on any driver; an async one needs the caller under `db.sync_entry`."""
    with db.connect(settings.DATABASE_URL, echo=bool(settings.get("SQL_ECHO", False))) as connection:
        yield connection


@db.sync_entry
def database_heads(settings: Settings) -> tuple[tuple[str, ...], str]:
    """The revisions the database records, and its dialect's name: on a connection of its own."""
    with connect(settings) as connection:
        return current_heads(connection), connection.dialect.name


DEFAULT_LOCK_TIMEOUT = 300.0


@contextmanager
def locked_connection(settings: Settings, timeout: float | None = None) -> Iterator[Connection]:
    """A migration connection holding the database's migration lock (project/locks.py).

    Whoever waits reads the current revision only after the holder has finished, so the
    second of two concurrent migrates finds nothing left to do. The connection comes with no
    transaction open. The lock dies with the session or process, so a killed migrate never
    blocks the next one; waiting longer than `timeout` (default: MIGRATE_LOCK_TIMEOUT) raises
    MigrationError.
    """
    from project.core.errors import mask_url
    from project.core.locks import LockTimeout, migration_lock

    if timeout is None:
        timeout = float(settings.get("MIGRATE_LOCK_TIMEOUT", DEFAULT_LOCK_TIMEOUT))
    with connect(settings) as connection:
        try:
            with migration_lock(connection, timeout, where=mask_url(settings.DATABASE_URL)):
                yield connection
        except LockTimeout as exc:
            raise MigrationError(str(exc)) from None


StepCallback = Callable[[Step, float], None]


def run_plan(
    settings: Settings,
    connection: Connection,
    plan: Plan,
    *,
    fake: bool = False,
    on_start: StepCallback | None = None,
    on_done: StepCallback | None = None,
    script: ScriptDirectory | None = None,
) -> None:
    """Carry out `plan` on `connection`, one transaction per revision where the engine allows it.

    Pass the ScriptDirectory the plan was made from: Alembic then runs on it instead of loading
    (importing) every version file a second time.
    """
    if not plan.steps:
        return
    pending = list(plan.steps)
    target = plan.target or "base"
    if fake:
        # Django's --fake: record the target without running anything (stamp moves in one step).
        command.stamp(alembic_config(settings, connection=connection), target)
        for step in plan.steps:
            if on_done:
                on_done(step, 0.0)
        return
    executed: list[str] = []
    started = time.perf_counter()

    def statement_done(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        executed.append(statement)

    def version_applied(**_: Any) -> None:
        nonlocal started
        executed.clear()  # what ran so far belongs to the revision just recorded
        done = pending.pop(0)
        if on_done:
            on_done(done, time.perf_counter() - started)
        started = time.perf_counter()
        if pending and on_start:
            on_start(pending[0], 0.0)

    cfg = alembic_config(settings, connection=connection, on_version_apply=version_applied)
    if on_start:
        on_start(pending[0], 0.0)
    # after_cursor_execute fires only for statements that completed: exactly "what already ran".
    event.listen(connection, "after_cursor_execute", statement_done)
    try:
        _upgrade_or_downgrade(cfg, script or script_directory(cfg), target, plan.forwards)
    except Exception as exc:
        if not pending or _environment_failure(connection, executed, exc):
            raise  # errors.describe() words it (read-only database, lost server...): not the revision's fault
        raise _step_failed(connection, plan, pending[0], executed, exc) from exc
    finally:
        event.remove(connection, "after_cursor_execute", statement_done)


def _upgrade_or_downgrade(cfg: Config, script: ScriptDirectory, target: str, forwards: bool) -> None:
    """alembic.command.upgrade/downgrade, on a ScriptDirectory whose revision map is already loaded."""
    from alembic.runtime.environment import EnvironmentContext

    def revisions(rev: Any, _context: Any) -> Any:
        # The very calls alembic.command.upgrade/downgrade make.
        return script._upgrade_revs(target, rev) if forwards else script._downgrade_revs(target, rev)

    with EnvironmentContext(cfg, script, fn=revisions, as_sql=False, destination_rev=target):
        script.run_env()


def _step_failed(connection: Connection, plan: Plan, step: Step, executed: list[str], exc: Exception) -> MigrationError:
    """One line: which revision failed, why, and what of it is left in the database."""
    from sqlalchemy.exc import DBAPIError

    cause = str(exc.orig) if isinstance(exc, DBAPIError) else f"{type(exc).__name__}: {exc}"
    cause = " ".join(cause.split())
    verb = "Applying" if step.forwards else "Unapplying"
    before = plan.current if step is plan.steps[0] else plan.steps[plan.steps.index(step) - 1].revision
    if not step.forwards:
        before = step.revision
    recorded = f"the database stays recorded at {before or 'zero'}"
    ran = [" ".join(s.split()) for s in executed if _is_schema_statement(s)]
    if connection.dialect.name in {"mysql", "mariadb"} and ran:
        return MigrationError(
            f"{verb} {step} failed: {cause}. MySQL/MariaDB cannot roll back DDL, and these statements of it "
            f"already ran: {'; '.join(ran)}. {recorded.capitalize()}: undo them by hand (or make the revision "
            "tolerate them), fix the file, then re-run migrate."
        )
    return MigrationError(f"{verb} {step} failed: {cause}. Nothing of it was kept and {recorded}; "
                          "fix the revision, then re-run migrate.")


def _environment_failure(connection: Connection, executed: list[str], exc: Exception) -> bool:
    """The database, not the revision, failed, and nothing of the revision is left to report."""
    from sqlalchemy.exc import OperationalError

    partial = connection.dialect.name in {"mysql", "mariadb"} and any(map(_is_schema_statement, executed))
    return isinstance(exc, OperationalError) and not partial and _looks_environmental(str(exc))


def _looks_environmental(message: str) -> bool:
    lowered = message.lower()
    return any(s in lowered for s in ("readonly", "read-only", "disk", "lost connection", "server closed",
                                      "connection refused", "unable to open"))


def _is_schema_statement(statement: str) -> bool:
    """A statement the revision itself ran: not a read, not Alembic's bookkeeping of alembic_version."""
    words = statement.split()
    if not words or words[0].upper() in {"SELECT", "SHOW", "PRAGMA", "DESCRIBE", "EXPLAIN", "BEGIN", "COMMIT",
                                         "ROLLBACK", "SET"}:
        return False
    return "alembic_version" not in statement.lower()


PlanCallback = Callable[[Plan, Connection], None]


@db.sync_entry  # async drivers: the whole sequence runs as AsyncConnection.run_sync would run it
def migrate(
    settings: Settings,
    target: str = "head",
    *,
    fake: bool = False,
    allow_destructive: bool = False,
    on_plan: PlanCallback | None = None,
    on_start: StepCallback | None = None,
    on_done: StepCallback | None = None,
) -> Plan:
    """Bring the settings' database to `target`: `manage.py migrate`, start-up migrations and
    `project.migrate_database()` are all this function.

    Under the migration lock (any number of processes may call it at once): read the current revision,
    make the plan, refuse it before anything runs when CONFIRM_DESTRUCTIVE is on and a step destroys
    data (unless `allow_destructive`; `fake` runs nothing and so is never refused), then run it.
    `on_plan(plan, connection)` is called once the plan has passed the policy, before the first step.
    """
    script = script_directory(alembic_config(settings))
    with locked_connection(settings) as connection:
        plan = make_plan(script, current_heads(connection), target)
        if not fake and not allow_destructive:
            refuse_destructive(settings, plan, connection.dialect.name)
        if on_plan is not None:
            on_plan(plan, connection)
        run_plan(settings, connection, plan, fake=fake, on_start=on_start, on_done=on_done, script=script)
    return plan


def refuse_destructive(settings: Settings, plan: Plan, dialect: str) -> None:
    """CONFIRM_DESTRUCTIVE: raise DestructiveStepsRefused for a plan with a step that destroys data."""
    if not settings.get("CONFIRM_DESTRUCTIVE", False):
        return
    from project.core import safety

    destructive = safety.classify_plan(plan, dialect)
    if destructive:
        steps = "; ".join(
            f"{'apply' if s.forwards else 'unapply'} {s.revision} {safety.summary(f)}" for s, f in destructive
        )
        target = plan.target or "zero"
        raise DestructiveStepsRefused(
            f"Refusing to run destructive steps (CONFIRM_DESTRUCTIVE is on): {steps}. Review them with "
            f"`manage.py migrate {target} --plan`, then apply them with "
            f"`manage.py migrate {target} --allow-destructive`."
        )


@dataclass
class Preview:
    """What a migrate would do now, read without waiting for the migration lock."""

    plan: Plan
    dialect: str
    running: bool  # another migrate holds the lock at this moment


@db.sync_entry
def preview(settings: Settings, target: str = "head") -> Preview:
    """The plan to `target` as of now, and whether a migrate is running: `migrate --plan` and `--check`
    only read, so they answer at once instead of queueing behind a migrate that holds the lock."""
    from project.core.locks import migration_running

    script = script_directory(alembic_config(settings))
    with connect(settings) as connection:
        plan = make_plan(script, current_heads(connection), target)
        return Preview(plan, connection.dialect.name, migration_running(connection))
