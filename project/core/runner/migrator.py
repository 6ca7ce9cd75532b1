"""What every caller of the migrations shares: manage.py commands, the app's lifespan, tests.

A thin layer over Alembic: it takes the migration lock, reads the database's revisions, makes the plan
(project.core.history.plan), applies the destructive-step policy, and runs `alembic` on a connection it owns.
`migrate()` is the one sequence every caller goes through: lock, plan, destructive-step policy, run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event
from sqlalchemy.exc import DBAPIError

from project.core import db
from project.core.bookkeeping import is_schema_statement, schema_statements_run
from project.core.conf import Settings

# The error model lives in project.core.errors; callers may import the migration family from here.
from project.core.errors import DestructiveStepsRefused, MigrationError, UnknownRevision, cause_of
from project.core.history import applied_log, backfill
from project.core.history.plan import Plan, Step, make_plan
from project.core.history.scripts import (
    alembic_config,
    cached_script_directory,
    current_heads,
    import_modules,
    script_directory,
    upgrade_or_downgrade,
)
from project.core.inspection.shards import refuse_sharded
from project.core.runner import failover, fleet, interrupted, invalid_indexes, timeouts
from project.core.runner.locks import DEFAULT_LOCK_LEASE, DEFAULT_LOCK_TIMEOUT, locked_connection
from project.core.runner.unmanaged import refuse_unmanaged

if TYPE_CHECKING:  # imported where used: a migrate with nothing to apply, or nothing to judge, needs neither
    from project.core.inspection import destructive, plan_judge

# locked_connection lives in runner.locks (a migrate at head takes it without importing Alembic: runner.at_head).
__all__ = ["DEFAULT_LOCK_LEASE", "DEFAULT_LOCK_TIMEOUT", "DestructiveStepsRefused", "MigrationError", "UnknownRevision",
           "locked_connection"]


@db.sync_entry
def database_heads(settings: Settings, url: str | None = None) -> tuple[tuple[str, ...], str]:
    """The revisions the database records, and its dialect's name: on a connection of its own."""
    with db.settings_connection(settings, url) as connection:
        return current_heads(connection), connection.dialect.name


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
    on_progress: Callable[[Step, str], None] | None = None,
) -> None:
    """Carry out `plan` on `connection`, one transaction per revision where the engine allows it.
    `log` (an applied_log.Recorder) writes each revision's row of the applied log.

    Pass the ScriptDirectory the plan was made from: Alembic then runs on it instead of loading
    (importing) every version file a second time. Every statement runs under the lock and statement
    timeouts of project.core.runner.timeouts; a revision whose lock was not granted in time is retried there
    (`on_retry(step, retry number, delay)` before each retry). `on_progress(step, line)`: a backfill's progress.
    """
    if not plan.steps:
        return
    pending = list(plan.steps)
    target = plan.target or "base"
    if log is not None:
        log.expect(plan.steps)
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
        # --- backfills (history.backfill): their progress rows go, their outcome goes to the applied log ---
        notes = backfill.settle(ctx.connection, cfg.attributes, done.revision)
        if log is not None:  # in the revision's transaction, before it commits; and the next one's start
            log.done(ctx.connection, done, pending[0] if pending else None, notes=notes)
        if on_done:
            on_done(done, time.perf_counter() - started)
        started = time.perf_counter()
        if pending and on_start:
            on_start(pending[0], 0.0)

    cfg = alembic_config(settings, connection=connection, on_version_apply=version_applied)
    if on_progress is not None:  # a backfill's progress lines, for the revision running
        cfg.attributes[backfill.REPORT] = lambda line: on_progress(pending[0], line)
    if log is not None:
        log.start(pending[0])
    if on_start:
        on_start(pending[0], 0.0)
    # after_cursor_execute fires only for statements that completed: exactly "what already ran".
    event.listen(connection, "after_cursor_execute", statement_done)
    limits = timeouts.Timeouts.from_settings(settings)
    try:
        with timeouts.session_timeouts(connection, limits):
            try:
                timeouts.run_retrying(
                    connection, limits, lambda: upgrade_or_downgrade(cfg, script or script_directory(cfg), target,
                                                                      plan.forwards),
                    pending, executed, lambda step, ran, why: _step_failed(connection, plan, step, ran, why,
                                                                           lock=True),
                    on_retry)
            except MigrationError as exc:  # a lock not granted after the retries, worded already
                # Logged under the migration's own lock timeout: the session that held the lock may hold it
                # still, and on SQLite (one lock for the file) the default busy timeout would wait 30 s more.
                if log is not None and pending:
                    log.failed(pending[0], executed, exc)
                raise
    except MigrationError:
        raise
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM under manage.py (errors.Interrupted)
        if not pending:
            raise
        raise interrupted.interrupted(connection, plan, pending[0], executed, exc, log) from None
    except Exception as exc:
        if pending and interrupted.connection_lost(connection, exc):
            raise interrupted.server_lost(connection, plan, pending[0], executed, exc) from exc
        if not pending or _environment_failure(connection, executed, exc):
            raise  # errors.describe() words it (read-only database, lost server...): not the revision's fault
        if log is not None:
            log.failed(pending[0], executed, exc)
        raise _step_failed(connection, plan, pending[0], executed, exc) from exc
    finally:
        event.remove(connection, "after_cursor_execute", statement_done)


def _step_failed(connection: Connection, plan: Plan, step: Step, executed: list[str], exc: Exception | str,
                 lock: bool = False) -> MigrationError:
    """One line: which revision failed, why, and what of it is left in the database. `lock`: it failed
    because a lock was not granted (`exc` then says which and who holds it), not because of its code."""
    cause = exc if isinstance(exc, str) else cause_of(exc)
    if not isinstance(exc, str) and timeouts.is_statement_timeout(exc):
        cause += " (MIGRATE_STATEMENT_TIMEOUT: raise it, or run this revision when the table is quiet)"
    # A failed CREATE INDEX CONCURRENTLY leaves an INVALID index behind (the lock path words it itself).
    invalid = None if isinstance(exc, str) else invalid_indexes.advice(connection, exc)
    if invalid:
        cause = f"{cause}. {invalid}"
    verb = "Applying" if step.forwards else "Unapplying"
    recorded = f"the database stays recorded at {interrupted.recorded_before(plan, step)}"
    if backfill.runs_backfills(step.script):  # history.backfill: its committed batches stay, and it resumes
        return MigrationError(f"{verb} {step} failed: {cause}. {recorded.capitalize()}; "
                              f"{backfill.resume_note(connection, step.revision)}: fix the cause, then re-run migrate.")
    ran = schema_statements_run(executed)
    why = interrupted.partial_because(connection, step)
    if ran and why is not None:
        return MigrationError(
            f"{verb} {step} failed: {cause}. {why[0].upper()}{why[1:]}, and these statements of it "
            f"already ran: {'; '.join(ran)}. {recorded.capitalize()}: undo them by hand (or make the revision "
            "tolerate them), fix the file, then re-run migrate."
        )
    fix = "end that session or wait for it, then re-run migrate" if lock else "fix the revision, then re-run migrate"
    nothing = "nothing else" if invalid or "INVALID" in cause else "nothing"
    return MigrationError(f"{verb} {step} failed: {cause}. {nothing.capitalize()} of it was kept and {recorded}; "
                          f"{fix}.")


def _environment_failure(connection: Connection, executed: list[str], exc: Exception) -> bool:
    """The database, not the revision, failed, and nothing of the revision is left to report."""

    from project.core.errors import is_environmental

    partial = connection.dialect.name in {"mysql", "mariadb"} and any(map(is_schema_statement, executed))
    return isinstance(exc, DBAPIError) and not partial and is_environmental(exc, connection.engine.url)


PlanCallback = Callable[[Plan, Connection], None]


@db.sync_entry  # async drivers: the whole sequence runs as AsyncConnection.run_sync would run it
def migrate(settings: Settings, target: str = "head", *, fake: bool = False, **options: Any) -> Plan:
    """Bring the settings' database to `target`: `manage.py migrate`, start-up migrations and
    `project.migrate_database()` are all this function. The options are migrate_locked's.

    Under the migration lock (any number of processes may call it at once): read the current revision,
    make the plan, refuse it before anything runs when CONFIRM_DESTRUCTIVE is on and a step destroys
    data (unless `allow_destructive`; `fake` runs nothing and so is never refused), then run it.
    `on_plan(plan, connection)` is called once the plan has passed the policy, before the first step.
    The plan stops before a contract revision that a live instance's code does not carry (runner.fleet:
    `on_held` says which and why), unless `break_running_instances`. `on_progress(step, line)`: a backfill's
    progress (history.backfill).
    """
    # Spider tables: DDL would not reach the data nodes (inspection.shards); `fake` records what was done by hand.
    with locked_connection(settings, before_lock=None if fake else refuse_sharded) as connection:
        return migrate_locked(settings, connection, target, fake=fake, **options)


def migrate_locked(
    settings: Settings,
    connection: Connection,
    target: str = "head",
    *,
    fake: bool = False,
    allow_destructive: bool = False,
    on_plan: PlanCallback | None = None,
    on_start: StepCallback | None = None,
    on_done: StepCallback | None = None,
    on_retry: Callable[[Step, int, float], None] | None = None,
    break_running_instances: bool = False,
    on_held: Callable[[fleet.Held], None] | None = None,
    on_progress: Callable[[Step, str], None] | None = None,
) -> Plan:
    """migrate() on `connection`, which holds the migration lock (locked_connection, with refuse_sharded before
    the lock unless `fake`) and has no transaction open: runner.at_head hands over the connection it checked."""
    # issue 24 (overhead2): the revision map from cached facts; only the files of the steps to run are imported.
    script = cached_script_directory(alembic_config(settings), settings)
    heads = current_heads(connection)
    plan = make_plan(script, heads, target)
    import_modules([step.script for step in plan.steps])  # one that fails to import stops before anything ran
    if not (break_running_instances or fake):
        plan = fleet.hold_back(connection, script, plan, on_held)

    if not heads and not fake:  # no revision recorded: tables the first revision creates mean adoption
        refuse_unmanaged(settings, connection, plan)

    # An applied revision edited since: CHECKSUM_MISMATCH. What it read of the log, prepare() starts from.
    logged = applied_log.verify(settings, connection, script, heads)
    if not fake and connection.dialect.name in applied_log.NON_TRANSACTIONAL and plan.steps:
        interrupted.refuse_interrupted(connection, plan, logged or {})  # a half-run revision is not rerun blind
    if not fake:  # a half of a revision that nothing records (a failover lost its commit): runner.failover
        failover.refuse_half_applied(settings, connection, plan)
    if not fake and not allow_destructive:
        refuse_destructive(settings, plan, connection.dialect.name, target, connection)
    log = applied_log.prepare(settings, connection, script, heads, logged)  # create the applied log, or heal it
    if on_plan is not None:
        on_plan(plan, connection)
    run_plan(settings, connection, plan, fake=fake, on_start=on_start, on_done=on_done,
             script=plan.script or script, log=log, on_retry=on_retry, on_progress=on_progress)
    # The fleet's table (runner.fleet), created by migrate as the schema's owner: the app's user only writes
    # rows, and the gate above always has its table. After the plan, as the applied log on a fresh database.
    fleet.ensure(connection)
    return plan


@db.sync_entry
def prune(settings: Settings) -> list[str]:
    """`migrate --prune`: under the migration lock, forget the applied-log rows of removed version files."""
    script = script_directory(alembic_config(settings))
    with locked_connection(settings) as connection:
        return applied_log.prune(connection, script)


def refuse_destructive(settings: Settings, plan: Plan, dialect: str, target: str = "head",
                       connection: Connection | None = None) -> None:
    """Before anything runs: refuse a plan that unapplies a revision without a downgrade (always: it could
    only fail half-way), and under CONFIRM_DESTRUCTIVE one with a step that destroys data this database holds
    or that cannot be inspected offline (each with its own message). Raises DestructiveStepsRefused.

    What a step destroys is judged against `connection`'s database and the plan itself
    (inspection.plan_judge): dropping what the plan created, what the database does not hold, or a
    constraint the plan re-creates on the same columns loses nothing, and an empty database has nothing to lose."""
    if not plan.steps:
        return
    from project.core.inspection import destructive, plan_judge

    confirming = bool(settings.get("CONFIRM_DESTRUCTIVE", False))
    database = plan_judge.Database(connection) if connection is not None else None
    if confirming and database is not None and all(step.forwards for step in plan.steps):
        # A forward plan on a database that holds no table (a fresh one) destroys nothing whatever its steps
        # do, and what cannot be inspected is not asked about there (plan_judge.judge_plan says so of every
        # finding): asking that once costs one reflection, where inspecting every revision offline costs
        # about a millisecond each, and the SQL parser's import for the first raw SQL.
        try:
            if database.empty():
                return
        finally:
            database.done()
    # Without CONFIRM_DESTRUCTIVE only an unapply can be refused (no downgrade): a forward migrate does not
    # pay for running every pending revision offline to inspect it.
    verdicts = [(step, destructive.assess_revision(step.script, step.forwards, dialect))
                for step in plan.steps if confirming or not step.forwards]
    stuck = [step.revision for step, verdict in verdicts if verdict.no_downgrade]
    if stuck:
        raise DestructiveStepsRefused(
            f"Cannot unapply {', '.join(stuck)}: its downgrade() raises NotImplementedError (no way back). "
            "Nothing was changed; restore from a backup, or write the downgrade."
        )
    if not confirming:
        return
    judged = judge(plan, dialect, connection, [verdict for _, verdict in verdicts], database)
    # "heads" of a one-line history is plain `migrate`.
    plain = target == "head" or (target == "heads" and plan.target != "heads")
    command = "manage.py migrate" + ("" if plain else f" {target}")
    destroying = [j for j in judged if j.destroys]
    if destroying:
        steps = "; ".join(
            f"{'apply' if j.step.forwards else 'unapply'} {j.step.revision} "
            f"{destructive.summary([f.text for f in j.destroys])}" for j in destroying
        )
        raise DestructiveStepsRefused(
            f"Refusing to run destructive steps (CONFIRM_DESTRUCTIVE is on): {steps}. Review them with "
            f"`{command} --plan`, then apply them with `{command} --allow-destructive`."
        )
    unknown = [j for j in judged if j.uninspectable]
    if unknown:
        steps = "; ".join(f"{'apply' if j.step.forwards else 'unapply'} {j.step.revision}: {j.uninspectable}"
                          for j in unknown)
        raise DestructiveStepsRefused(
            f"Cannot tell whether these steps destroy data, so CONFIRM_DESTRUCTIVE stops them: {steps}. Read "
            f"them, then run `{command} --allow-destructive`."
        )


def judge(plan: Plan, dialect: str, connection: Connection | None,
          verdicts: list[destructive.Verdict] | None = None,
          database: plan_judge.Database | None = None) -> list[plan_judge.Judged]:
    """The plan's steps judged on `connection`'s database (None: on the plan alone), for the policy and for
    `migrate --plan`, which must mark what the policy refuses. `database`: the reflection of `connection`'s
    database when the caller has one already (what it read is not read again)."""
    from project.core.inspection import plan_judge

    if database is None and connection is not None:
        database = plan_judge.Database(connection)
    return plan_judge.judge_plan(plan.steps, dialect, database, verdicts)


@dataclass
class Preview:
    """What a migrate would do now, read without waiting for the migration lock."""

    plan: Plan
    dialect: str
    running: bool  # another migrate holds the lock at this moment
    judged: list[plan_judge.Judged] | None = None  # each step on this database (`judged=True`)


@db.sync_entry
def preview(settings: Settings, target: str = "head", *, judged: bool = False) -> Preview:
    """The plan to `target` as of now, and whether a migrate is running: `migrate --plan` and `--check`
    only read, so they answer at once instead of queueing behind a migrate that holds the lock. `judged`:
    also what each step destroys on this database, as the policy judges it (`migrate --plan` marks it)."""
    from project.core.runner.locks import migration_running

    script = cached_script_directory(alembic_config(settings), settings)  # issue 24 (overhead2), as migrate()
    with db.settings_connection(settings, db.migration_url(settings)) as connection:
        refuse_sharded(connection)  # what migrate would refuse, --plan and --check refuse too
        heads = current_heads(connection)
        plan = make_plan(script, heads, target)
        if not heads:  # what migrate would refuse, --plan and --check refuse too
            refuse_unmanaged(settings, connection, plan)
        steps = judge(plan, connection.dialect.name, connection) if judged and plan.steps else None
        return Preview(plan, connection.dialect.name,
                       migration_running(connection, str(settings.get("MIGRATE_LOCK", "auto"))), steps)
