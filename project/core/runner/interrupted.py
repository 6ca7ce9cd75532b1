"""A migrate that ended in the middle of a revision: interrupted (Ctrl-C, SIGTERM), killed, or whose server went
away. What of the revision is left, said in one line, and what the next migrate does about it.

PostgreSQL and SQLite roll a revision's DDL back with its transaction: nothing of an interrupted revision is
kept, and the next migrate runs it again. MySQL/MariaDB commit each DDL statement as it runs: the applied log's
`running` row (written before the revision, see project.core.history.applied_log) then says a revision may be
half-applied, and the next migrate refuses to run it again blind (it would fail on "Table ... already exists",
or worse, apply twice what it did) until the operator has finished or undone it and run `manage.py repair`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from project.core.bookkeeping import schema_statements_run
from project.core.errors import DatabaseFailure, Interrupted, MigrationError, cause_of, classify, mask_url
from project.core.history import applied_log, backfill
from project.core.history.plan import Plan, Step
from project.core.runner import timeouts

MYSQL = {"mysql", "mariadb"}
ENGINE_NAMES = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}


def connection_lost(connection: Connection, exc: BaseException) -> bool:
    """The migration connection's session is gone: the server died, restarted, shut down or ended it."""
    if connection.invalidated:
        return True
    return isinstance(exc, DBAPIError) and classify(exc, connection.engine.url) is DatabaseFailure.DISCONNECTED


def recorded_before(plan: Plan, step: Step) -> str:
    """The revision alembic_version records while `step` has not finished."""
    if not step.forwards:
        return step.revision
    before = plan.current if step is plan.steps[0] else plan.steps[plan.steps.index(step) - 1].revision
    return before or "zero"


def partial_because(connection: Connection, step: Step) -> str | None:
    """Why what ran of `step` stays in the database, or None when its transaction takes it back."""
    if connection.dialect.name in MYSQL:
        return "MySQL/MariaDB cannot roll back DDL"
    if timeouts.commits_on_its_own(step.script):
        return "the revision commits part of itself (autocommit_block)"
    return None


def server_lost(connection: Connection, plan: Plan, step: Step, executed: list[str],
                exc: Exception) -> MigrationError:
    """One line: the server went away during `step`; the revision is not at fault."""
    verb = "applying" if step.forwards else "unapplying"
    where = mask_url(connection.engine.url)
    head = f"Lost the connection to the database server while {verb} {step} ({where}): {cause_of(exc).rstrip('.')}."
    before = recorded_before(plan, step)
    if backfill.runs_backfills(step.script):  # resumable by design: nothing to finish or undo by hand
        return MigrationError(f"{head} The database stays recorded at {before}; {step.revision} runs a backfill: "
                              "the batches it committed are kept, and migrate resumes after them once the server "
                              "is back (no row is updated twice).")
    why = partial_because(connection, step)
    if why is None:
        engine = ENGINE_NAMES.get(connection.dialect.name, connection.dialect.name)
        return MigrationError(f"{head} On {engine} nothing of {step.revision} was kept (its transaction ends with "
                              f"the session) and the database stays recorded at {before}; re-run migrate once the "
                              "server is back.")
    ran = schema_statements_run(executed)
    what = (f"these statements of it had run: {'; '.join(ran)}, and the one running when the connection was lost "
            "may have been applied too" if ran else
            "none of its statements had completed, but the one running when the connection was lost may have been "
            "applied")
    return MigrationError(f"{head} {why[0].upper()}{why[1:]}: {what}. The database stays recorded at {before}: once "
                          f"the server is back, finish or undo {step.revision} by hand, then run `manage.py repair "
                          f"{step.revision}` and migrate.")


def interrupted(connection: Connection, plan: Plan, step: Step, executed: list[str], exc: KeyboardInterrupt,
                log: Any) -> Interrupted:
    """One line for a migrate stopped by a signal during `step`; on MySQL/MariaDB the applied log records what
    of it ran, when the connection can still say (interrupted between statements)."""
    signal_name = exc.signal_name if isinstance(exc, Interrupted) else "SIGINT"
    returncode = exc.returncode if isinstance(exc, Interrupted) else 130
    verb = "applying" if step.forwards else "unapplying"
    head = f"Interrupted ({signal_name}) while {verb} {step}"
    before = recorded_before(plan, step)
    if backfill.runs_backfills(step.script):  # resumable by design: nothing to finish or undo by hand
        note = "the batches its backfill committed are kept" if connection.invalidated else \
            backfill.resume_note(connection, step.revision)
        return Interrupted(f"{head}: the database stays recorded at {before}; {note}; re-run migrate to resume.",
                           signal_name, returncode)
    why = partial_because(connection, step)
    ran = schema_statements_run(executed)
    if why is None:
        message = f"{head}: nothing of it was kept and the database stays recorded at {before}; re-run migrate."
        return Interrupted(message, signal_name, returncode)
    mid_statement = connection.invalidated  # SQLAlchemy drops a connection interrupted inside a statement
    if log is not None and not mid_statement:
        log.interrupted(step, executed, f"{signal_name} after these statements")
    if not ran and not mid_statement:
        message = (f"{head}: none of its statements had run and the database stays recorded at {before}; re-run "
                   "migrate.")
    else:
        what = f"these statements of it had run: {'; '.join(ran)}" if ran else "none of its statements had completed"
        if mid_statement:
            what += ", and the one running when it stopped may be applied too"
        message = (f"{head}: {why}, and {what}. The database stays recorded at {before}, so the next migrate stops "
                   f"at {step.revision}: finish or undo it by hand, then run `manage.py repair {step.revision}`.")
    return Interrupted(message, signal_name, returncode)


def refuse_interrupted(connection: Connection, plan: Plan, entries: dict[str, applied_log.Entry] | None = None) -> None:
    """MySQL/MariaDB, before anything runs: refuse a plan whose first revision the applied log shows interrupted
    (`running` with no migrate holding the lock: killed, or its server lost) unless the log knows that none of
    its statements ran. Its DDL is not rolled back, so part of it may be applied: running it again blind fails,
    or applies twice what it did. `entries`: the log as the caller read it under the same lock (None: read it)."""
    step = plan.steps[0]
    if backfill.runs_backfills(step.script):
        return  # its backfill resumes after the last batch it recorded: running it again is what finishes it
    entry = (applied_log.read(connection) if entries is None else entries).get(step.revision)
    if entry is None or not entry.interrupted:
        return
    ran = entry.ran
    if ran == []:
        return  # the log knows none of its statements ran (stopped between statements): nothing to undo
    verb = "applied" if step.forwards else "unapplied"
    when = f" at {entry.started_at:%Y-%m-%d %H:%M:%S} UTC" if entry.started_at else ""
    where = mask_url(connection.engine.url)
    if ran:
        what = f"these statements of it had run: {'; '.join(ran)}"
    else:
        what = ("MySQL/MariaDB does not roll back DDL, so part of it may be applied, and the applied log does not "
                "know which of its statements ran (its migrate was killed or lost its server)")
    compares = ("it compares the database with what the revision creates: recorded as applied, or cleared so that "
                "migrate runs it again" if step.forwards else
                "it compares the database with the revision applied and unapplied, and records which it is")
    raise MigrationError(
        f"Revision {step} did not finish when it was last {verb} on {where} (started{when}): {what}. The database "
        f"is still recorded at {recorded_before(plan, step)}, so it is not run again blind: finish it or undo it "
        f"by hand, then run `manage.py repair {step.revision}` ({compares}), then migrate."
    )
