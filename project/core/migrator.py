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
from sqlalchemy.exc import DBAPIError

from project.core import db
from project.core.conf import Settings, base_dir, migrations_dir

# The error model lives in project.core.errors; callers may import the migration family from here.
from project.core.errors import DestructiveStepsRefused, MigrationError, UnknownRevision


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
            f"The history has {len(heads)} heads ({', '.join(sorted(heads))}): migrate them all with "
            "`manage.py migrate heads` (or one branch with `migrate <label>@head`), or join them with "
            "`manage.py makemigrations --merge`."
        )
    if not heads:
        raise MigrationError("The history has no revisions yet: run `manage.py makemigrations` to write the first.")
    return heads[0]


def history_head(script: ScriptDirectory) -> str | None:
    """The history's one head, or None while it has no revision yet (a new project before its first
    makemigrations). Several heads are an error, as for single_head."""
    return single_head(script) if script.get_heads() else None


def current_heads(connection: Connection) -> tuple[str, ...]:
    """The revisions recorded in alembic_version; () on an empty database. Leaves no transaction open."""
    try:
        return tuple(MigrationContext.configure(connection).get_current_heads())
    finally:
        if connection.in_transaction():
            connection.rollback()


def resolve_revision(script: ScriptDirectory, target: str) -> str | None:
    """An Alembic destination for `target`: head (the one head), heads (every head), <label or rev>@head (the
    head of that branch), zero/base (None), a revision id or a unique prefix of one."""
    if target in {"zero", "base"}:
        return None
    if target == "head":
        return history_head(script)  # an empty history's head is zero: nothing to apply, as in Django
    if target == "heads":
        heads = script.get_heads()
        return (heads[0] if heads else None) if len(heads) <= 1 else "heads"
    if target.endswith("@head"):
        try:
            found = script.get_revisions(target)
        except AlembicCommandError as exc:
            raise MigrationError(f"Unknown branch in '{target}': {exc}. `manage.py showmigrations` lists the "
                                 "revisions and their branch labels.") from None
        return found[0].revision if len(found) == 1 else target
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
    script: ScriptDirectory | None = None  # the history the plan runs on when a squash stands in for a range

    @property
    def forwards(self) -> bool:
        return all(step.forwards for step in self.steps)


def make_plan(script: ScriptDirectory, heads: tuple[str, ...], target: str) -> Plan:
    """The revisions to apply (forwards) or unapply (backwards) to get from `heads` to `target`, in the order
    Alembic runs them, across branches. A target behind a current head is a downgrade, as in Django."""
    check_known(script, heads)
    from project.core import squash

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
    from project.core.errors import relative_path

    return f"revision {step.revision} ({relative_path(step.script.path)})"


def cause_of(exc: BaseException) -> str:
    """The driver's or Python's own words for `exc`, on one line."""
    from sqlalchemy.exc import DBAPIError

    cause = str(exc.orig) if isinstance(exc, DBAPIError) else f"{type(exc).__name__}: {exc}"
    return " ".join(cause.split())


def check_known(script: ScriptDirectory, heads: tuple[str, ...]) -> None:
    """UnknownRevision when the database records a revision that no version file defines.

    Every command that reads the current revision calls this (or make_plan, which does) before
    walking the history from it, so all of them say it in the same one line.
    """
    for head in heads:
        if _lookup(script, head) is None:
            raise UnknownRevision(head)


def _lookup(script: ScriptDirectory, rev: str) -> Script | None:
    try:
        return script.get_revision(rev)
    except AlembicCommandError:
        return None


def migration_url(settings: Settings) -> str:
    """The URL migrations connect with: MIGRATION_DATABASE_URL (a direct connection, past any pooler)
    when set, else DATABASE_URL, which the application keeps using either way."""
    return settings.get("MIGRATION_DATABASE_URL") or settings.DATABASE_URL


@contextmanager
def connect(settings: Settings, url: str | None = None) -> Iterator[Connection]:
    """A synchronous connection to `url` (default: DATABASE_URL) on any driver, on an engine of its own that
    is disposed after; an async driver needs the caller under `db.sync_entry`."""
    with db.connect(url or settings.DATABASE_URL, echo=bool(settings.get("SQL_ECHO", False))) as connection:
        yield connection


@db.sync_entry
def database_heads(settings: Settings, url: str | None = None) -> tuple[tuple[str, ...], str]:
    """The revisions the database records, and its dialect's name: on a connection of its own."""
    with connect(settings, url) as connection:
        return current_heads(connection), connection.dialect.name


DEFAULT_LOCK_TIMEOUT = 300.0
DEFAULT_LOCK_LEASE = 60.0  # Galera's lock row: how long a silent holder keeps it (see locks._GaleraLock)


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
    from project.core.topology import UnfitTarget, check_migration_target

    if timeout is None:
        timeout = float(settings.get("MIGRATE_LOCK_TIMEOUT", DEFAULT_LOCK_TIMEOUT))
    url = migration_url(settings)
    where = mask_url(url)
    try:
        with connect(settings, url) as connection:
            try:
                # A standby, a read-only server or a transaction pooler is refused before anything is written.
                check_migration_target(connection, where, direct_url=settings.get("MIGRATION_DATABASE_URL"),
                                       env_name=f"{settings.name.upper()}_MIGRATION_DATABASE_URL")
                with migration_lock(connection, timeout, where=where,
                                    lease=float(settings.get("MIGRATE_LOCK_LEASE", DEFAULT_LOCK_LEASE))):
                    yield connection
            except (LockTimeout, UnfitTarget) as exc:
                raise MigrationError(str(exc)) from None
    except DBAPIError as exc:
        if settings.get("MIGRATION_DATABASE_URL"):
            # errors.describe names the server and the setting that failed, not the application's.
            exc.database_url, exc.database_setting = url, "MIGRATION_DATABASE_URL"  # type: ignore[attr-defined]
        raise


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
    log: Any = None,
    on_retry: Callable[[Step, int, float], None] | None = None,
) -> None:
    """Carry out `plan` on `connection`, one transaction per revision where the engine allows it.
    `log` (an applied_log.Recorder) writes each revision's row of the applied log.

    Pass the ScriptDirectory the plan was made from: Alembic then runs on it instead of loading
    (importing) every version file a second time. Every statement runs under the lock and statement
    timeouts of project.core.timeouts; a revision whose lock was not granted in time is retried there
    (`on_retry(step, retry number, delay)` before each retry).
    """
    if not plan.steps:
        return
    pending = list(plan.steps)
    target = plan.target or "base"
    if fake:
        # Django's --fake: record the target without running anything (stamp moves in one step).
        command.stamp(alembic_config(settings, connection=connection), target)
        if log is not None:
            log.faked(plan.steps)
        for step in plan.steps:
            if on_done:
                on_done(step, 0.0)
        return
    executed: list[str] = []
    started = time.perf_counter()

    def statement_done(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        executed.append(statement)

    def version_applied(*, ctx: Any, **_: Any) -> None:
        nonlocal started
        executed.clear()  # what ran so far belongs to the revision just recorded
        done = pending.pop(0)
        if log is not None:  # in the revision's transaction, before it commits
            log.done(ctx.connection, done)
            if pending:
                log.start(pending[0])
        if on_done:
            on_done(done, time.perf_counter() - started)
        started = time.perf_counter()
        if pending and on_start:
            on_start(pending[0], 0.0)

    cfg = alembic_config(settings, connection=connection, on_version_apply=version_applied)
    if log is not None:
        log.start(pending[0])
    if on_start:
        on_start(pending[0], 0.0)
    # after_cursor_execute fires only for statements that completed: exactly "what already ran".
    event.listen(connection, "after_cursor_execute", statement_done)
    from project.core import timeouts

    limits = timeouts.Timeouts.from_settings(settings)
    try:
        with timeouts.session_timeouts(connection, limits):
            timeouts.run_retrying(
                connection, limits, lambda: _upgrade_or_downgrade(cfg, script or script_directory(cfg), target,
                                                                  plan.forwards),
                pending, executed, lambda step, ran, why: _step_failed(connection, plan, step, ran, why, lock=True),
                on_retry)
    except MigrationError as exc:  # a lock not granted after the retries (project.core.timeouts), worded already
        if log is not None and pending:
            log.failed(pending[0], executed, exc)
        raise
    except Exception as exc:
        if not pending or _environment_failure(connection, executed, exc):
            raise  # errors.describe() words it (read-only database, lost server...): not the revision's fault
        if log is not None:
            log.failed(pending[0], executed, exc)
        raise _step_failed(connection, plan, pending[0], executed, exc) from exc
    finally:
        event.remove(connection, "after_cursor_execute", statement_done)


def _upgrade_or_downgrade(cfg: Config, script: ScriptDirectory, target: str, forwards: bool, *,
                          as_sql: bool = False, starting_rev: str | None = None) -> None:
    """alembic.command.upgrade/downgrade, on a ScriptDirectory whose revision map is already loaded (or a squashed
    view of the history); `as_sql` from `starting_rev` is their --sql mode (offline.py renders squashes with it)."""
    from alembic.runtime.environment import EnvironmentContext

    def revisions(rev: Any, _context: Any) -> Any:
        # The very calls alembic.command.upgrade/downgrade make: private, so pinned by
        # tests/test_errors_model.py::test_upgrade_revs_is_what_alembic_command_uses.
        return script._upgrade_revs(target, rev) if forwards else script._downgrade_revs(target, rev)

    with EnvironmentContext(cfg, script, fn=revisions, as_sql=as_sql, starting_rev=starting_rev,
                            destination_rev=target):
        script.run_env()


def _step_failed(connection: Connection, plan: Plan, step: Step, executed: list[str], exc: Exception | str,
                 lock: bool = False) -> MigrationError:
    """One line: which revision failed, why, and what of it is left in the database. `lock`: it failed
    because a lock was not granted (`exc` then says which and who holds it), not because of its code."""
    from project.core.nontransactional import invalid_index_advice
    from project.core.timeouts import commits_on_its_own, is_statement_timeout

    cause = exc if isinstance(exc, str) else cause_of(exc)
    if not isinstance(exc, str) and is_statement_timeout(exc):
        cause += " (MIGRATE_STATEMENT_TIMEOUT: raise it, or run this revision when the table is quiet)"
    # A failed CREATE INDEX CONCURRENTLY leaves an INVALID index behind (the lock path words it itself).
    invalid = None if isinstance(exc, str) else invalid_index_advice(connection, exc)
    if invalid:
        cause = f"{cause}. {invalid}"
    verb = "Applying" if step.forwards else "Unapplying"
    before = plan.current if step is plan.steps[0] else plan.steps[plan.steps.index(step) - 1].revision
    if not step.forwards:
        before = step.revision
    recorded = f"the database stays recorded at {before or 'zero'}"
    ran = [" ".join(s.split()) for s in executed if _is_schema_statement(s)]
    mysql = connection.dialect.name in {"mysql", "mariadb"}
    if ran and (mysql or commits_on_its_own(step.script)):
        why = ("MySQL/MariaDB cannot roll back DDL" if mysql
               else "The revision commits part of itself (autocommit_block)")
        return MigrationError(
            f"{verb} {step} failed: {cause}. {why}, and these statements of it "
            f"already ran: {'; '.join(ran)}. {recorded.capitalize()}: undo them by hand (or make the revision "
            "tolerate them), fix the file, then re-run migrate."
        )
    fix = "end that session or wait for it, then re-run migrate" if lock else "fix the revision, then re-run migrate"
    nothing = "nothing else" if invalid or "INVALID" in cause else "nothing"
    return MigrationError(f"{verb} {step} failed: {cause}. {nothing.capitalize()} of it was kept and {recorded}; "
                          f"{fix}.")


def _environment_failure(connection: Connection, executed: list[str], exc: Exception) -> bool:
    """The database, not the revision, failed, and nothing of the revision is left to report."""
    from sqlalchemy.exc import DBAPIError

    from project.core.errors import is_environmental

    partial = connection.dialect.name in {"mysql", "mariadb"} and any(map(_is_schema_statement, executed))
    return isinstance(exc, DBAPIError) and not partial and is_environmental(exc, connection.engine.url)


def _is_schema_statement(statement: str) -> bool:
    """A statement the revision itself ran: not a read, not a session setting, not the tool's bookkeeping
    (Alembic's alembic_version, the applied log's rows)."""
    words = statement.split()
    if not words or words[0].upper() in {"SELECT", "SHOW", "PRAGMA", "DESCRIBE", "EXPLAIN", "BEGIN", "COMMIT",
                                         "ROLLBACK", "SET", "RESET"}:
        return False
    from project.core.applied_log import TABLE_NAME

    lowered = statement.lower()
    return "alembic_version" not in lowered and TABLE_NAME not in lowered


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
    on_retry: Callable[[Step, int, float], None] | None = None,
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
        heads = current_heads(connection)
        plan = make_plan(script, heads, target)
        from project.core import applied_log

        if not heads and not fake:  # no revision recorded: tables the first revision creates mean adoption
            from project.core.adopt import refuse_unmanaged

            refuse_unmanaged(settings, connection, plan)

        applied_log.verify(settings, connection, script, heads)  # an applied revision edited: CHECKSUM_MISMATCH
        if not fake and not allow_destructive:
            refuse_destructive(settings, plan, connection.dialect.name, target)
        log = applied_log.prepare(settings, connection, script, heads)  # create the applied log, or heal it
        if on_plan is not None:
            on_plan(plan, connection)
        run_plan(settings, connection, plan, fake=fake, on_start=on_start, on_done=on_done,
                 script=plan.script or script, log=log, on_retry=on_retry)
    return plan


@db.sync_entry
def prune(settings: Settings) -> list[str]:
    """`migrate --prune`: under the migration lock, forget the applied-log rows of removed version files."""
    from project.core import applied_log

    script = script_directory(alembic_config(settings))
    with locked_connection(settings) as connection:
        return applied_log.prune(connection, script)


def refuse_destructive(settings: Settings, plan: Plan, dialect: str, target: str = "head") -> None:
    """Before anything runs: refuse a plan that unapplies a revision without a downgrade (always: it could
    only fail half-way), and under CONFIRM_DESTRUCTIVE one with a step that destroys data or that cannot be
    inspected offline (each with its own message). Raises DestructiveStepsRefused."""
    from project.core import safety

    confirming = bool(settings.get("CONFIRM_DESTRUCTIVE", False))
    # Without CONFIRM_DESTRUCTIVE only an unapply can be refused (no downgrade): a forward migrate does not
    # pay for running every pending revision offline to inspect it.
    verdicts = [(step, safety.assess_revision(step.script, step.forwards, dialect))
                for step in plan.steps if confirming or not step.forwards]
    stuck = [step.revision for step, verdict in verdicts if verdict.no_downgrade]
    if stuck:
        raise DestructiveStepsRefused(
            f"Cannot unapply {', '.join(stuck)}: its downgrade() raises NotImplementedError (no way back). "
            "Nothing was changed; restore from a backup, or write the downgrade."
        )
    if not confirming:
        return
    # "heads" of a one-line history is plain `migrate`.
    plain = target == "head" or (target == "heads" and plan.target != "heads")
    command = "manage.py migrate" + ("" if plain else f" {target}")
    destructive = [(s, v.destroys) for s, v in verdicts if v.destroys]
    if destructive:
        steps = "; ".join(
            f"{'apply' if s.forwards else 'unapply'} {s.revision} {safety.summary(f)}" for s, f in destructive
        )
        raise DestructiveStepsRefused(
            f"Refusing to run destructive steps (CONFIRM_DESTRUCTIVE is on): {steps}. Review them with "
            f"`{command} --plan`, then apply them with `{command} --allow-destructive`."
        )
    unknown = [(s, v.uninspectable) for s, v in verdicts if v.uninspectable]
    if unknown:
        steps = "; ".join(f"{'apply' if s.forwards else 'unapply'} {s.revision}: {why}" for s, why in unknown)
        raise DestructiveStepsRefused(
            f"Cannot tell whether these steps destroy data, so CONFIRM_DESTRUCTIVE stops them: {steps}. Read "
            f"them, then run `{command} --allow-destructive`."
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
    with connect(settings, migration_url(settings)) as connection:
        heads = current_heads(connection)
        plan = make_plan(script, heads, target)
        if not heads:  # what migrate would refuse, --plan and --check refuse too
            from project.core.adopt import refuse_unmanaged

            refuse_unmanaged(settings, connection, plan)
        return Preview(plan, connection.dialect.name, migration_running(connection))
