"""Backfills that do not stall: a data change run in batches from a version file (docs/phases.md, "Backfills").

    from project.core.history.backfill import backfill

    def upgrade() -> None:
        backfill("users", {"display_name": "name"}, where="display_name IS NULL")

One UPDATE over a big table holds its row locks (on MySQL/MariaDB its gap locks too) until it commits, and every
writer touching those rows waits that long. `backfill` walks the table by its key instead (keyset: each batch is
`key > last AND key <= upper`, where `upper` is the `batch_size`-th matching key after `last`; never OFFSET), one
transaction per batch, with a pause between batches for the writers, up to the highest key there is when the
run starts (rows inserted meanwhile are the running code's to fill). Each batch commits with its progress row in
the tool's table `alembic_migration_backfill`, in the same transaction: a migrate killed at any moment has either
applied a batch and recorded it, or neither, so the next migrate resumes after the last recorded key and no row is
updated twice (an increment backfill is exactly-once). Once the revision is recorded as applied, its progress
rows are deleted in that same transaction (runner.migrator calls `settle`) and the outcome goes to the revision's
applied-log row.

The batches commit on their own, so a backfill runs outside the revision's transaction (Alembic's
`autocommit_block`, which commits what the revision ran before it): a revision holding a backfill should hold
nothing else, so that running it again after a kill only resumes the backfill. Its phase is expand.

Offline (`migrate --sql`, `sqlmigrate`) it is rendered as a loop a DBA can run: on PostgreSQL a DO block that
commits each batch, on MariaDB/MySQL an anonymous compound statement (`BEGIN NOT ATOMIC`) that does, both keeping
the same progress row (so a script stopped mid-way resumes when run again from that revision). SQLite has no loops
in SQL: one UPDATE is emitted, with a comment saying so (run `manage.py migrate` online for batches on SQLite).

`backfill()` invokes a custom Alembic operation, BackfillOp (Alembic's public API for them): what records a
revision's operations without running them (check, the destructive-step inspection, phase inference) sees the
backfill as itself, and authoring.backfills renders it into generated revisions.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
import time
from dataclasses import dataclass
from typing import Any

from alembic.operations import MigrateOperation, Operations
from sqlalchemy import BigInteger, Column, Connection, Integer, MetaData, String, Table, text

from project.core.bookkeeping import BACKFILL_MARK, BACKFILL_TABLE
from project.core.db import UTCDateTime
from project.core.errors import MigrationError

metadata = MetaData()
progress_table = Table(
    BACKFILL_TABLE,
    metadata,
    Column("revision", String(64), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("last_key", String(255)),  # the last key of the last batch committed (as text), NULL before the first
    Column("rows_done", BigInteger, nullable=False),
    Column("batches", Integer, nullable=False),
    Column("runs", Integer, nullable=False),  # 1 + how many times it was resumed
    Column("state", String(16), nullable=False),  # running / done
    Column("started_at", UTCDateTime()),
    Column("updated_at", UTCDateTime()),
)

PROGRESS_BATCHES = 100  # a progress line every this many batches...
PROGRESS_SECONDS = 10.0  # ...or this many seconds, whichever comes first
REPORT = "backfill_report"  # config.attributes: callable(line) that shows progress (runner.migrator sets it)
OUTCOMES = "backfill_outcomes"  # config.attributes: {revision: [outcome line]} of the backfills run


@dataclass(frozen=True)
class Backfill:
    table: str
    values: dict[str, str]
    where: str | None
    key: str
    batch_size: int
    pause: float
    name: str


def backfill(table: str, values: dict[str, str], *, where: str | None = None, key: str = "id",
             batch_size: int = 1000, pause: float = 0.1, name: str | None = None) -> None:
    """Set `values` ({column: SQL expression}, evaluated per row: `"name"`, `"counter + 1"`, `"lower(email)"`) on
    the rows of `table` that match `where` (an SQL condition; None: every row), `batch_size` rows per transaction,
    sleeping `pause` seconds between batches, walking `key` (a unique, indexed column: the primary key). `name`
    tells two backfills of one revision apart (default: the table's name)."""
    from alembic import op

    if not values:
        raise MigrationError(f"backfill({table!r}): give the columns to set, e.g. {{'display_name': 'name'}}.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise MigrationError(f"backfill({table!r}): batch_size must be a number of rows >= 1, not {batch_size!r}.")
    if pause < 0:
        raise MigrationError(f"backfill({table!r}): pause must be >= 0 seconds, not {pause!r}.")
    spec = Backfill(table, dict(values), where, key, batch_size, float(pause), name or table)
    # Alembic does not tell an operation which revision runs it; a version file defines `revision` (Alembic
    # requires it), and the progress row is that revision's.
    revision = str(sys._getframe(1).f_globals.get("revision") or "")
    if not revision:
        raise MigrationError(f"backfill({table!r}) is called from a version file: its module defines `revision`.")
    op.invoke(BackfillOp(spec, revision))


class BackfillOp(MigrateOperation):
    """The backfill as an Alembic operation (Alembic's public API for custom operations): what reads a revision's
    operations without running them (check, CONFIRM_DESTRUCTIVE's inspection, phase inference) records it as
    itself, and Operations.invoke runs it through _invoke below, online or offline."""

    def __init__(self, spec: Backfill, revision: str) -> None:
        self.spec = spec
        self.revision = revision


@Operations.implementation_for(BackfillOp)
def _invoke(operations: Operations, operation: BackfillOp) -> None:
    spec, revision = operation.spec, operation.revision
    context = operations.get_context()
    dialect = context.dialect.name
    if context.as_sql:
        _render(context, spec, revision, dialect)
        return
    connection = context.connection
    assert connection is not None  # online: Alembic runs the revision on a connection
    if _scratch(connection):
        # A replay on the scratch SQLite database (check, repair, offline SQLite): its tables are empty, and the
        # offline SQLite script gets the one UPDATE SQLite can run (see the module's docstring).
        connection.execute(text(_one_update_sqlite(spec)))
        return
    _run_online(context, connection, spec, revision)


def _run_online(context: Any, connection: Connection, spec: Backfill, revision: str) -> None:
    config = context.config
    attributes: dict[str, Any] = config.attributes if config is not None else {}
    report = attributes.get(REPORT) or (lambda line: None)
    block = context.autocommit_block()
    block.__enter__()
    try:
        outcome = _run(context.connection or connection, spec, revision, report)  # the block's: AUTOCOMMIT
    except BaseException as exc:
        # A signal (or a lost server) in the middle of a statement invalidates the connection, and the block's
        # exit then fails on it (PendingRollbackError): the interruption is what happened, and what to report.
        try:
            block.__exit__(type(exc), exc, exc.__traceback__)
        except Exception:  # noqa: BLE001
            pass
        raise
    block.__exit__(None, None, None)
    attributes.setdefault(OUTCOMES, {}).setdefault(revision, []).append(outcome)


def _scratch(connection: Connection) -> bool:
    from project.core.history.scratch import is_scratch

    return is_scratch(connection)


# --- online ---------------------------------------------------------------------------------------------------


def _q(connection: Connection, identifier: str) -> str:
    return str(connection.dialect.identifier_preparer.quote(identifier))


def _user_sql(fragment: str) -> str:
    """An SQL fragment of the version file inside text(): its colons are not bind parameters."""
    return fragment.replace(":", r"\:")


def _begin(connection: Connection) -> None:
    """A transaction of the batch's own: the migration connection is in AUTOCOMMIT inside the autocommit block."""
    statement = {"sqlite": "BEGIN IMMEDIATE", "mysql": "START TRANSACTION", "mariadb": "START TRANSACTION"}
    connection.exec_driver_sql(f"{statement.get(connection.dialect.name, 'BEGIN')} {BACKFILL_MARK}")


def _end(connection: Connection, commit: bool) -> None:
    connection.exec_driver_sql(f"{'COMMIT' if commit else 'ROLLBACK'} {BACKFILL_MARK}")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _run(connection: Connection, spec: Backfill, revision: str, report: Any) -> str:
    """The batches, on `connection` in AUTOCOMMIT; returns the outcome line for the applied log."""
    from sqlalchemy import inspect

    t = progress_table.c
    metadata.create_all(connection, checkfirst=True)
    columns = {c["name"]: c for c in inspect(connection).get_columns(spec.table)}
    if spec.key not in columns:
        raise MigrationError(f"backfill({spec.table!r}): the table has no column {spec.key!r} to walk: name its "
                             "primary key (or another unique, indexed column) with key=...")
    try:
        python_type = columns[spec.key]["type"].python_type
    except NotImplementedError:
        python_type = str
    if python_type not in (int, str):
        raise MigrationError(f"backfill({spec.table!r}): key {spec.key!r} is neither an integer nor a string column: "
                             "walk an integer or string key (key=...).")
    mine = (t.revision == revision) & (t.name == spec.name)
    row = connection.execute(progress_table.select().where(mine)).first()
    started = time.perf_counter()
    if row is not None and row.state == "done":
        outcome = (f"backfill {spec.name}: done by an earlier run ({row.rows_done} rows in {row.batches} batches); "
                   "nothing left to do")
        report(outcome)
        return outcome
    if row is None:
        connection.execute(progress_table.insert().values(
            revision=revision, name=spec.name, rows_done=0, batches=0, runs=1, state="running",
            started_at=_now(), updated_at=_now()))
        last: Any = None
        rows, batches, runs = 0, 0, 1
        report(f"backfill {spec.name}: {spec.table} by {spec.key}, batches of {spec.batch_size}, "
               f"{spec.pause:g}s apart")
    else:
        last = None if row.last_key is None else python_type(row.last_key)
        rows, batches, runs = int(row.rows_done), int(row.batches), int(row.runs) + 1
        connection.execute(progress_table.update().where(mine).values(runs=runs, updated_at=_now()))
        report(f"backfill {spec.name}: resumed after {batches} batches ({rows} rows, {spec.key} > {last})")
    earlier = (rows, batches)
    span = _span(connection, spec) if python_type is int else None

    table, key = _q(connection, spec.table), _q(connection, spec.key)
    where = f" AND ({_user_sql(spec.where)})" if spec.where else ""
    sets = ", ".join(f"{_q(connection, column)} = ({_user_sql(expr)})" for column, expr in spec.values.items())
    # The walk ends at the highest key there is when this run starts: rows inserted while it runs are written by
    # code that fills them (the recipes' release 1, or the rename's triggers). Without the end, a backfill whose
    # `where` matches what the running code inserts finds a new row after every pause and never finishes.
    high = connection.execute(text(f"SELECT MAX({key}) FROM {table} {BACKFILL_MARK}")).scalar()
    after = f"{key} > :last AND "
    bound_sql = (f"SELECT MAX(b.k) FROM (SELECT {key} AS k FROM {table} WHERE {{after}}{key} <= :high{where} "
                 f"ORDER BY {key} LIMIT :n) b {BACKFILL_MARK}")
    first_bound, next_bound = text(bound_sql.format(after="")), text(bound_sql.format(after=after))
    first_update = text(f"UPDATE {table} SET {sets} WHERE {key} <= :upper{where} {BACKFILL_MARK}")
    next_update = text(f"UPDATE {table} SET {sets} WHERE {key} > :last AND {key} <= :upper{where} {BACKFILL_MARK}")
    recorded = progress_table.update().where(mine)
    shown_batches, shown_at = batches, time.monotonic()
    while True:
        _begin(connection)
        try:
            params = {"n": spec.batch_size, "high": high} if last is None else \
                {"n": spec.batch_size, "high": high, "last": last}
            upper = None if high is None else \
                connection.execute(first_bound if last is None else next_bound, params).scalar()
            if upper is None:
                connection.execute(recorded.values(state="done", updated_at=_now()))
                _end(connection, commit=True)
                break
            params = {"upper": upper} if last is None else {"upper": upper, "last": last}
            changed = connection.execute(first_update if last is None else next_update, params).rowcount
            changed = max(int(changed or 0), 0)
            connection.execute(recorded.values(last_key=str(upper), rows_done=t.rows_done + changed,
                                               batches=t.batches + 1, updated_at=_now()))
            _end(connection, commit=True)
        except BaseException:
            _rollback_quietly(connection)
            raise
        last, rows, batches = upper, rows + changed, batches + 1
        if batches - shown_batches >= PROGRESS_BATCHES or time.monotonic() - shown_at >= PROGRESS_SECONDS:
            report(f"backfill {spec.name}: {rows} rows in {batches} batches, {spec.key} at {last}"
                   f"{_percent(span, last)}")
            shown_batches, shown_at = batches, time.monotonic()
        if spec.pause:
            time.sleep(spec.pause)
    took = time.perf_counter() - started
    resumed = (f"; resumed after {earlier[1]} batches ({earlier[0]} rows) of {runs - 1} earlier run(s)"
               if runs > 1 else "")
    outcome = (f"backfill {spec.name}: done, {rows} rows in {batches} batches of up to {spec.batch_size} by "
               f"{spec.key}, this run {took:.1f}s{resumed}")
    report(outcome)
    return outcome


def _rollback_quietly(connection: Connection) -> None:
    """The batch's transaction undone; a connection already gone (killed server, interrupted statement) has none."""
    try:
        if not connection.invalidated and not connection.closed:
            _end(connection, commit=False)
    except Exception:  # noqa: BLE001 - the batch's own error is the one to report
        pass


def _span(connection: Connection, spec: Backfill) -> tuple[int, int] | None:
    table, key = _q(connection, spec.table), _q(connection, spec.key)
    low, high = connection.execute(text(f"SELECT MIN({key}), MAX({key}) FROM {table} {BACKFILL_MARK}")).one()
    return None if low is None or high is None or high <= low else (int(low), int(high))


def _percent(span: tuple[int, int] | None, last: Any) -> str:
    if span is None:
        return ""
    low, high = span
    return f" ({max(0.0, min(1.0, (int(last) - low) / (high - low))):.0%} of its range)"


def settle(connection: Connection, attributes: dict[str, Any], revision: str) -> str | None:
    """In the transaction that records `revision` as applied (runner.migrator's on_version_apply hook): delete
    the progress rows of the backfills it ran, and return their outcome lines for its applied-log row (None: it
    ran no backfill, and nothing is asked of the database)."""
    outcomes = attributes.get(OUTCOMES, {}).pop(revision, None)
    if not outcomes:
        return None
    t = progress_table.c
    connection.execute(progress_table.delete().where(t.revision == revision))
    return "\n".join(f"-- {line}" for line in outcomes)


_IMPORTED = re.compile(r"project\.core\.history(\.backfill\b|\s+import\s[^\n]*\bbackfill\b)")


def runs_backfills(script: Any) -> bool:
    """Whether a revision's file runs a backfill (it imports `backfill`, at its top or inside upgrade()): running
    it again resumes the backfill, never repeats a batch."""
    module = getattr(script, "module", None)
    if module is not None and any(value is backfill for value in vars(module).values()):
        return True
    try:
        with open(script.path, encoding="utf-8") as file:
            return _IMPORTED.search(file.read()) is not None
    except (OSError, AttributeError):
        return False


def progress(connection: Connection, revision: str) -> list[Any]:
    """The progress rows of `revision`'s backfills ([] when there is no progress table)."""
    from sqlalchemy import inspect

    try:
        if not inspect(connection).has_table(BACKFILL_TABLE):
            return []
        t = progress_table.c
        return list(connection.execute(progress_table.select().where(t.revision == revision).order_by(t.name)))
    finally:
        if connection.in_transaction():
            connection.rollback()


def resume_note(connection: Connection, revision: str) -> str:
    """'its backfill tasks had committed 12 batches (1200 rows, up to id 1200): ...' for a revision stopped in its
    backfill, read back from the progress table (the batches it committed are kept, by design)."""
    try:
        rows = progress(connection, revision)
    except Exception:  # noqa: BLE001 - a lost server: say what is known without it
        rows = []
    done = "; ".join(f"{r.name}: {r.batches} batches ({r.rows_done} rows) up to key {r.last_key}" for r in rows)
    kept = f"the batches its backfill committed are kept ({done})" if done else \
        "the batches its backfill committed, if any, are kept"
    return f"{kept}, and the next migrate resumes after them (no row is updated twice)"


# --- offline ---------------------------------------------------------------------------------------------------


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _one_update_sqlite(spec: Backfill) -> str:
    def quote(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    sets = ", ".join(f"{quote(c)} = ({_user_sql(e)})" for c, e in spec.values.items())
    where = f" WHERE {_user_sql(spec.where)}" if spec.where else ""
    return (f"-- backfill {spec.name}: SQLite has no loops in SQL, so this is one UPDATE (it holds the database's "
            f"write lock until it ends); `manage.py migrate` runs it in batches of {spec.batch_size}.\n"
            f"UPDATE {quote(spec.table)} SET {sets}{where}")


def _render(context: Any, spec: Backfill, revision: str, dialect: str) -> None:
    """The loop as SQL, written straight to Alembic's offline output (static_output: no SQLAlchemy compilation,
    which would double every % and read every :word as a parameter)."""
    from sqlalchemy.schema import CreateTable

    impl = context.impl
    if dialect == "sqlite":
        impl.static_output(_one_update_sqlite(spec).replace("\\:", ":") + impl.command_terminator)
        return
    with context.autocommit_block():  # PostgreSQL: COMMIT; the loop commits its own batches; BEGIN
        create = str(CreateTable(progress_table, if_not_exists=True).compile(dialect=context.dialect)).strip()
        impl.static_output(create + impl.command_terminator)
        for statement in _offline_start(spec, revision, dialect):
            impl.static_output(statement + impl.command_terminator)
        loop = _postgresql_loop(spec, revision) if dialect == "postgresql" else _mysql_loop(spec, revision)
        impl.static_output(loop + "\n")
    # With the version row (in its transaction where the engine has one): the progress row is done with.
    impl.static_output(f"DELETE FROM {BACKFILL_TABLE} WHERE revision = {_literal(revision)}"
                       + impl.command_terminator)


_NOW = {"postgresql": "CURRENT_TIMESTAMP", "mysql": "UTC_TIMESTAMP()", "mariadb": "UTC_TIMESTAMP()"}


def _offline_start(spec: Backfill, revision: str, dialect: str) -> list[str]:
    """The progress row: created when missing, else counted as one more run (the script resumes)."""
    now = _NOW.get(dialect, "CURRENT_TIMESTAMP")
    mine = f"revision = {_literal(revision)} AND name = {_literal(spec.name)}"
    values = f"({_literal(revision)}, {_literal(spec.name)}, 0, 0, 0, 'running', {now}, {now})"
    columns = "(revision, name, rows_done, batches, runs, state, started_at, updated_at)"
    insert = (f"INSERT INTO {BACKFILL_TABLE} {columns} VALUES {values} ON CONFLICT DO NOTHING"
              if dialect == "postgresql" else f"INSERT IGNORE INTO {BACKFILL_TABLE} {columns} VALUES {values}")
    return [insert, f"UPDATE {BACKFILL_TABLE} SET runs = runs + 1, updated_at = {now} WHERE {mine}"]


def _loop_parts(spec: Backfill, revision: str, quote: str) -> tuple[str, str, str, str, str, str, str]:
    """What the PostgreSQL and MariaDB loops share, in the engine's identifier quote: the quoted table and key, the
    `where` clause's AND, the SET list, the progress row's condition, and the statements finding the first batch's
    upper key and a following batch's (up to v_high, the highest key when the loop starts, as online)."""
    def ident(name: str) -> str:
        return quote + name.replace(quote, quote * 2) + quote

    table, key = ident(spec.table), ident(spec.key)
    where = f" AND ({spec.where})" if spec.where else ""
    sets = ", ".join(f"{ident(c)} = ({e})" for c, e in spec.values.items())
    mine = f"revision = {_literal(revision)} AND name = {_literal(spec.name)}"
    bound = "SELECT max(b.k) INTO v_upper FROM (SELECT {key} AS k FROM {table} WHERE {after}{key} <= v_high{where} " \
            "ORDER BY {key} LIMIT {n}) AS b;"
    first, following = (bound.format(key=key, table=table, after=after, where=where, n=spec.batch_size)
                        for after in ("", f"{key} > v_last AND "))
    return table, key, where, sets, mine, first, following


def _postgresql_loop(spec: Backfill, revision: str) -> str:
    table, key, where, sets, mine, first, following = _loop_parts(spec, revision, '"')
    return f"""-- backfill {spec.name}: {spec.batch_size} rows per transaction, {spec.pause:g}s apart, resumable
-- (progress in {BACKFILL_TABLE}); COMMIT in DO needs PostgreSQL 11+ and psql's autocommit (its default).
DO $backfill$
DECLARE
    v_last {table}.{key}%TYPE;
    v_upper {table}.{key}%TYPE;
    v_high {table}.{key}%TYPE;
    v_rows bigint;
BEGIN
    SELECT last_key INTO v_last FROM {BACKFILL_TABLE} WHERE {mine} AND state = 'running';
    IF NOT FOUND THEN
        RETURN;  -- done by an earlier run
    END IF;
    SELECT max({key}) INTO v_high FROM {table};
    LOOP
        IF v_last IS NULL THEN
            {first}
        ELSE
            {following}
        END IF;
        EXIT WHEN v_upper IS NULL;
        IF v_last IS NULL THEN
            UPDATE {table} SET {sets} WHERE {key} <= v_upper{where};
        ELSE
            UPDATE {table} SET {sets} WHERE {key} > v_last AND {key} <= v_upper{where};
        END IF;
        GET DIAGNOSTICS v_rows = ROW_COUNT;
        UPDATE {BACKFILL_TABLE} SET last_key = v_upper::text, rows_done = rows_done + v_rows,
            batches = batches + 1, updated_at = CURRENT_TIMESTAMP WHERE {mine};
        COMMIT;
        v_last := v_upper;
        PERFORM pg_sleep({spec.pause:g});
    END LOOP;
    UPDATE {BACKFILL_TABLE} SET state = 'done', updated_at = CURRENT_TIMESTAMP WHERE {mine};
    COMMIT;
END
$backfill$;"""


def _mysql_loop(spec: Backfill, revision: str) -> str:
    table, key, where, sets, mine, first, following = _loop_parts(spec, revision, "`")
    # A compound statement needs the client's DELIMITER; the last line is a comment so that a terminator Alembic
    # or a renderer appends after it stays inside the comment.
    return f"""-- backfill {spec.name}: {spec.batch_size} rows per transaction, {spec.pause:g}s apart, resumable
-- (progress in {BACKFILL_TABLE}); an anonymous block needs MariaDB 10.1+ and its client's DELIMITER.
DELIMITER //
BEGIN NOT ATOMIC
    DECLARE v_last TYPE OF {table}.{key} DEFAULT NULL;
    DECLARE v_upper TYPE OF {table}.{key} DEFAULT NULL;
    DECLARE v_high TYPE OF {table}.{key} DEFAULT NULL;
    DECLARE v_state VARCHAR(16) DEFAULT NULL;
    DECLARE v_rows BIGINT DEFAULT 0;
    SELECT last_key, state INTO v_last, v_state FROM {BACKFILL_TABLE} WHERE {mine};
    SELECT max({key}) INTO v_high FROM {table};
    batches: LOOP
        IF v_state <> 'running' THEN
            LEAVE batches;
        END IF;
        SET v_upper = NULL;
        IF v_last IS NULL THEN
            {first}
        ELSE
            {following}
        END IF;
        IF v_upper IS NULL THEN
            UPDATE {BACKFILL_TABLE} SET state = 'done', updated_at = UTC_TIMESTAMP() WHERE {mine};
            LEAVE batches;
        END IF;
        START TRANSACTION;
        IF v_last IS NULL THEN
            UPDATE {table} SET {sets} WHERE {key} <= v_upper{where};
        ELSE
            UPDATE {table} SET {sets} WHERE {key} > v_last AND {key} <= v_upper{where};
        END IF;
        SET v_rows = ROW_COUNT();
        UPDATE {BACKFILL_TABLE} SET last_key = v_upper, rows_done = rows_done + v_rows, batches = batches + 1,
            updated_at = UTC_TIMESTAMP() WHERE {mine};
        COMMIT;
        SET v_last = v_upper;
        DO SLEEP({spec.pause:g});
    END LOOP batches;
END//
DELIMITER ;
-- end of backfill {spec.name}"""
