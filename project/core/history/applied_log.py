"""The applied log: one row per revision applied or unapplied, beside alembic_version.

alembic_version stays the source of truth (plain `alembic` keeps working); the log says, per revision
run, its direction, state, checksum (project.core.history.checksums), when it started (UTC), how long it took, the
database user and the client host that ran it, and for a failed one the statements that had run.

States: `running` (MySQL/MariaDB only, written before a revision whose DDL cannot be rolled back), `applied`,
`unapplied`, `failed` (with its statements), `faked` (migrate --fake), `backfilled` (applied before the log
existed, or by a tool that does not write it, such as plain `alembic`), `repaired` (`manage.py repair`:
direction `up` = counts as applied with the checksum recorded then, `down` = a failure cleared).
The newest row of a revision (highest id) is its state.

Where the engine allows it (PostgreSQL, SQLite) a revision's row is written in the revision's own
transaction, from Alembic's on_version_apply hook: both are kept or neither is. On MySQL/MariaDB a
`running` row is committed before the revision and turned into `applied` in the transaction that moves
alembic_version. Everything here runs under the migration lock, on the migration connection.
"""

from __future__ import annotations

import datetime as dt
import functools
import getpass
import socket
import sys
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Connection, Double, Integer, MetaData, String, Table, Text, bindparam, false, select
from sqlalchemy.exc import DBAPIError

from project.core.bookkeeping import APPLIED_LOG_TABLE, schema_statements_run
from project.core.db import UTCDateTime
from project.core.errors import MigrationError, relative_path

TABLE_NAME = APPLIED_LOG_TABLE
APPLIED_STATES = {"applied", "backfilled", "faked"}
NON_TRANSACTIONAL = {"mysql", "mariadb"}
# The last line of a `failed` row's statements when its migrate ended mid-revision (killed, interrupted, its
# server lost) rather than on an error of the revision: "(interrupted: ..." as heal() writes it, "-- interrupted:
# ..." as Recorder.interrupted() does after the statements it knows ran.
INTERRUPTED_MARKS = ("(interrupted", "-- interrupted")

metadata = MetaData()
log_table = Table(
    TABLE_NAME,
    metadata,
    # A primary key on every table: Galera replicates only tables that have one.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("revision", String(64), nullable=False),
    Column("direction", String(4), nullable=False),  # up / down
    Column("state", String(16), nullable=False),
    Column("checksum", String(64)),
    Column("started_at", UTCDateTime()),
    Column("duration", Double),  # seconds
    Column("db_user", String(128)),
    Column("client_host", String(255)),
    Column("statements", Text),
)


# The statements a migrate sends once or twice per revision, built once: a statement object keeps its compiled
# form's cache key, where building one per row would compute it again each time.
_INSERT = log_table.insert()
_UPDATE_ROW = log_table.update().where(log_table.c.id == bindparam("row_id"))


_COLUMNS = tuple(c.name for c in log_table.c if c.name != "id")


@functools.cache
def _advance_statement() -> Any:
    """MySQL/MariaDB: INSERT the next revision's `running` row (first, so that the statement's generated id,
    its lastrowid, is that row's) and, in the same statement, the running revision's row again under its own id,
    which ON DUPLICATE KEY UPDATE turns into setting its state, duration and checksum (what _UPDATE_ROW sets)."""
    from sqlalchemy import null
    from sqlalchemy.dialects.mysql import insert as mysql_insert

    running = {"id": null(), **{n: bindparam(f"n_{n}", type_=log_table.c[n].type) for n in _COLUMNS}}
    finished = {"id": bindparam("d_id", type_=Integer()),
                **{n: bindparam(f"d_{n}", type_=log_table.c[n].type) for n in _COLUMNS}}
    statement = mysql_insert(log_table).values([running, finished])
    return statement.on_duplicate_key_update(state=statement.inserted.state, duration=statement.inserted.duration,
                                             checksum=statement.inserted.checksum,
                                             statements=statement.inserted.statements)


DriverSQL = tuple[str, list[str] | None, dict[str, Any]]
_driver_sql_by_dialect: weakref.WeakKeyDictionary[Any, dict[str, DriverSQL]] = weakref.WeakKeyDictionary()


def _driver_sql(dialect: Any, kind: str) -> DriverSQL:
    """One of the statements a migrate sends once a revision, as this dialect compiles it (SQLAlchemy's own SQL),
    compiled once per dialect: the order of its parameters for a positional paramstyle (None: named) and the bind
    processors of its typed parameters (their types' own, as SQLAlchemy applies them).

    `row`: the INSERT of one whole row, without RETURNING (the id is not read). `advance` (MySQL/MariaDB):
    _advance_statement(), a multi-row INSERT, which SQLAlchemy cannot give a cache key and so compiled again for
    every revision (issue 24). Sent with exec_driver_sql, neither walks its cache key nor sets up a result again
    for every revision (the row: 105 -> 64 us of CPU on psycopg2)."""
    compiled_once = _driver_sql_by_dialect.setdefault(dialect, {})
    found = compiled_once.get(kind)
    if found is None:
        if kind == "row":
            compiled = log_table.insert().inline().compile(dialect=dialect, column_keys=list(_COLUMNS))
        else:
            compiled = _advance_statement().compile(dialect=dialect)
        processors = {name: process for name, bind in compiled.binds.items()
                      if (process := bind.type.dialect_impl(dialect).bind_processor(dialect))}
        order = list(compiled.positiontup or ()) if compiled.positional else None
        found = compiled_once[kind] = (str(compiled), order, processors)
    return found


def _execute_driver_sql(connection: Connection, kind: str, params: dict[str, Any]) -> Any:
    statement, order, processors = _driver_sql(connection.dialect, kind)
    values = {name: processors[name](value) if name in processors else value for name, value in params.items()}
    return connection.exec_driver_sql(statement, tuple(values[name] for name in order) if order is not None else values)


def insert_row(connection: Connection, row: dict[str, Any]) -> None:
    """One row of the log, in the caller's transaction."""
    _execute_driver_sql(connection, "row", {name: row.get(name) for name in _COLUMNS})


class LogTableDamaged(MigrationError):
    """The log table exists but is not the table this tool writes (edited by hand)."""


class ChecksumMismatch(MigrationError):
    """An applied revision's file was edited (or removed) after it was applied."""


@dataclass
class Entry:
    """The newest log row of one revision."""

    revision: str
    direction: str
    state: str
    checksum: str | None
    started_at: dt.datetime | None
    duration: float | None
    statements: str | None

    @property
    def applied(self) -> bool:
        return self.state in APPLIED_STATES or (self.state == "repaired" and self.direction == "up")

    @property
    def failed(self) -> bool:
        return self.state in {"failed", "running"}

    @property
    def interrupted(self) -> bool:
        """Its migrate ended in its middle (killed, interrupted, server lost), not on an error of its own."""
        lines = (self.statements or "").splitlines()
        return self.state == "running" or (self.state == "failed" and bool(lines)
                                           and lines[-1].startswith(INTERRUPTED_MARKS))

    @property
    def ran(self) -> list[str] | None:
        """The schema statements of an interrupted revision that its log row says ran; None: unknown (its
        migrate was killed, or lost its server, before it could say)."""
        lines = (self.statements or "").splitlines()
        if not self.interrupted or self.state == "running" or not lines[-1].startswith("-- interrupted"):
            return None
        return lines[:-1]


# --- reading and creating the table --------------------------------------------------------------------


def exists(connection: Connection) -> bool:
    from sqlalchemy import inspect

    try:
        return bool(inspect(connection).has_table(TABLE_NAME))
    finally:
        end_transaction(connection)


def ensure(connection: Connection) -> bool:
    """Create the log table when the database lacks it (under the migration lock: racing migrates wait,
    then find it). True when it was created now."""
    created = False
    if not exists(connection):
        with connection.begin():
            metadata.create_all(connection, checkfirst=True)
        created = True
    check_shape(connection)
    return created


def check_shape(connection: Connection) -> None:
    """One cheap query that fails if a column this tool writes is missing or unreadable."""
    try:
        _rows(connection, select(*log_table.c).where(false()))
    finally:
        end_transaction(connection)


def read(connection: Connection, *, ensured: bool = False) -> dict[str, Entry]:
    """The newest row of each revision in the log; {} when the database has no log. `ensured`: the caller
    has just run ensure(), so the table is there. Whether it exists and its rows are read in one transaction,
    and every column is selected, so a column this tool writes that is missing fails the read itself
    (LogTableDamaged) without a shape query of its own."""
    from sqlalchemy import inspect

    c = log_table.c
    try:
        if not ensured and not inspect(connection).has_table(TABLE_NAME):
            return {}
        entries: dict[str, Entry] = {}
        for row in _rows(connection, select(*c).order_by(c.id)):
            entries[row.revision] = Entry(row.revision, row.direction, row.state, row.checksum, row.started_at,
                                          row.duration, row.statements)
        return entries
    finally:
        end_transaction(connection)


def _rows(connection: Connection, query: Any) -> list[Any]:
    try:
        return list(connection.execute(query))
    except DBAPIError as exc:
        from project.core.errors import cause_of

        raise LogTableDamaged(
            f"The applied log table {TABLE_NAME} is not as this tool wrote it ({cause_of(exc)}): restore it "
            f"from a backup, or drop it and run `manage.py migrate`, which re-creates it (the applied revisions "
            "are then backfilled with their current checksums)."
        ) from None
    except (ValueError, TypeError) as exc:
        # A value the column type cannot read back (a date edited into nonsense, say).
        raise LogTableDamaged(f"The applied log table {TABLE_NAME} holds a value this tool cannot read ({exc}): "
                              "correct or delete that row by hand, then run the command again.") from None


def end_transaction(connection: Connection) -> None:
    if connection.in_transaction():
        connection.rollback()


# --- who and when ---------------------------------------------------------------------------------------


def _who(connection: Connection) -> dict[str, Any]:
    return {"db_user": connection.engine.url.username or _os_user(), "client_host": _host()}


@functools.cache  # asked for every row a migrate writes: once per process is enough
def _host() -> str:
    return socket.gethostname()


@functools.cache
def _os_user() -> str:
    return getpass.getuser()


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_row(connection: Connection, revision: str, direction: str, state: str, **values: Any) -> dict[str, Any]:
    return {"revision": revision, "direction": direction, "state": state, **_who(connection), **values}


def insert(connection: Connection, rows: Iterable[dict[str, Any]]) -> None:
    """Insert rows in the caller's transaction (none open: in one of their own)."""
    rows = list(rows)
    if not rows:
        return
    if connection.in_transaction():
        connection.execute(log_table.insert(), rows)
        return
    with connection.begin():
        connection.execute(log_table.insert(), rows)


# --- before a migrate: create, heal, verify -------------------------------------------------------------


_last_applied: list[Any] = [None, None, []]  # script, heads, answer: heal and verify ask the same question


def applied_revisions(script: Any, heads: tuple[str, ...]) -> list[Any]:
    """The Script of every revision alembic_version counts as applied, oldest first."""
    if _last_applied[0] is script and _last_applied[1] == heads:
        return list(_last_applied[2])
    found: dict[str, Any] = {}
    for head in heads:
        for rev in script.iterate_revisions(head, "base"):
            found.setdefault(rev.revision, rev)
    answer = list(reversed(list(found.values())))
    _last_applied[:] = [script, heads, answer]
    return list(answer)


def _defined(script: Any, revision: str) -> bool:
    # Imported here: a migrate at head reads the log without Alembic (runner.at_head), and scripts imports it.
    from project.core.history.scripts import lookup

    return lookup(script, revision) is not None


def heal(connection: Connection, settings: Any, script: Any, heads: tuple[str, ...],
         entries: dict[str, Entry] | None = None) -> dict[str, Entry]:
    """Make the log agree with alembic_version, the source of truth, and return it.

    A revision applied but not logged as applied (applied before the log existed, by plain `alembic`, or by a
    migrate killed between its commit and its log row) gets a `backfilled` row with its file's checksum now;
    a `running` row of a revision that is not applied (a migrate killed mid-revision) becomes `failed`; a
    revision logged as applied that alembic_version no longer counts (plain `alembic downgrade`) gets an
    `unapplied` row. `entries`: the log as just read under the same lock (None: read it here).
    """
    from project.core.history.checksums import file_checksums

    if entries is None:
        entries = read(connection, ensured=True)
    applied = applied_revisions(script, heads)
    applied_ids = {rev.revision for rev in applied}
    missing = [rev for rev in applied if rev.revision not in entries or not entries[rev.revision].applied]
    # A downgrade interrupted mid-way leaves its revision recorded as applied: not backfilled, it stays for repair.
    missing = [rev for rev in missing if not _downgrade_interrupted(entries.get(rev.revision))]
    sums = file_checksums([rev.path for rev in missing], settings)
    # When they were applied is unknown: started_at stays NULL rather than claim the backfill's time.
    rows = [new_row(connection, rev.revision, "up", "backfilled", checksum=sums[rev.path]) for rev in missing]
    for entry in entries.values():
        if not _defined(script, entry.revision):
            continue  # an unknown revision is reported by verify(), not rewritten
        if entry.revision in applied_ids and not (entry.state == "running" and entry.direction == "down"):
            continue
        if entry.state == "running":
            rows.append(new_row(connection, entry.revision, entry.direction, "failed", started_at=entry.started_at,
                                statements="(interrupted: the migrate ended before this revision finished)"))
        elif entry.applied:
            rows.append(new_row(connection, entry.revision, "down", "unapplied", started_at=utc_now()))
    insert(connection, rows)
    return read(connection, ensured=True) if rows else entries


def _downgrade_interrupted(entry: Entry | None) -> bool:
    return entry is not None and entry.direction == "down" and entry.interrupted


@dataclass
class Mismatch:
    revision: str
    message: str


def mismatches(settings: Any, script: Any, heads: tuple[str, ...], entries: dict[str, Entry]) -> list[Mismatch]:
    """Every applied revision whose file no longer has the checksum the log recorded, every revision the log
    counts as applied that no file defines, and every checksum the log holds that is not one."""
    from project.core.history.checksums import file_checksums, is_checksum

    applied = [rev for rev in applied_revisions(script, heads) if rev.revision in entries]
    sums = file_checksums([rev.path for rev in applied], settings)
    found: list[Mismatch] = []
    for rev in applied:
        recorded = entries[rev.revision].checksum
        if recorded is None or recorded in {sums[rev.path], getattr(rev.module, "replaces_checksum", None)}:
            # None: a row without one (written by hand): nothing to compare with. A squash that now stands in
            # its END's place carries END's checksum (docs/history.md, "Squashing a history").
            continue
        where = f"{relative_path(rev.path)} (revision {rev.revision})"
        ways_out = (f"restore the file as it was, or review the change and run `manage.py repair {rev.revision}` "
                    "to record the file as it is now")
        if not is_checksum(recorded):
            found.append(Mismatch(rev.revision, f"{where}: the checksum {TABLE_NAME} records for it is not a "
                                                f"checksum ({recorded[:20]!r}; edited by hand?): {ways_out}."))
        else:
            found.append(Mismatch(rev.revision, f"{where} was edited after it was applied (its checksum differs "
                                                f"from the one in {TABLE_NAME}): {ways_out}."))
    applied_ids = {rev.revision for rev in applied}
    gone = [e for e in entries.values() if e.applied and e.revision not in applied_ids
            and not _defined(script, e.revision)]
    # The originals of a squash that stands in versions/ were deleted on purpose (docs/history.md).
    squashed = {r for rev in script.walk_revisions() for r in getattr(rev.module, "replaces", ())} if gone else set()
    for entry in gone:
        if entry.revision not in squashed:
            found.append(Mismatch(entry.revision, f"revision {entry.revision} is applied according to {TABLE_NAME} "
                                                  "but no version file defines it: restore its file, or run "
                                                  f"`manage.py repair {entry.revision}` to record it as removed."))
    return found


def mismatch_policy(settings: Any) -> str:
    """CHECKSUM_MISMATCH: "error" stops, "warn" warns and goes on; default error, warn under DEBUG."""
    value = settings.get("CHECKSUM_MISMATCH") or ("warn" if settings.get("DEBUG", False) else "error")
    if value not in {"error", "warn"}:
        from project.core.conf import ImproperlyConfigured

        raise ImproperlyConfigured(f"CHECKSUM_MISMATCH={value!r}: use 'error' (stop) or 'warn' (warn and go on).")
    return str(value)


_warned: set[str] = set()


def enforce(settings: Any, found: list[Mismatch]) -> None:
    """Stop on the first mismatch (CHECKSUM_MISMATCH = "error"), or warn once per process and go on."""
    if not found:
        return
    if mismatch_policy(settings) == "error":
        more = f" ({len(found) - 1} more: `manage.py check --database` lists them)" if len(found) > 1 else ""
        raise ChecksumMismatch(found[0].message + more)
    for mismatch in found:
        if mismatch.message not in _warned:
            _warned.add(mismatch.message)
            sys.stderr.write(f"Warning: {mismatch.message}\n")


def verify(settings: Any, connection: Connection, script: Any, heads: tuple[str, ...]) -> dict[str, Entry] | None:
    """Before a migrate acts, reading only: the applied revisions' files against the log (see enforce).
    `heads`: what alembic_version records, as the caller read it under the migration lock. Returns the log as
    read (None: the database has none), which prepare() can start from instead of reading it again."""
    from sqlalchemy import inspect

    try:  # one transaction: is there a log, and its rows
        present = inspect(connection).has_table(TABLE_NAME)
        entries = read(connection, ensured=True) if present else {}
    finally:
        end_transaction(connection)
    enforce(settings, mismatches(settings, script, heads, entries))
    return entries if present else None


_NOT_READ: Any = object()


def prepare(settings: Any, connection: Connection, script: Any, heads: tuple[str, ...],
            entries: dict[str, Entry] | None = _NOT_READ) -> Recorder:
    """Once a migrate's plan passed its refusals (under the migration lock): create the log if missing and
    heal it against `heads`; the Recorder then writes the rows of this run. `entries`: what verify() returned,
    under the same lock (None: no log), so the log is not looked for and read a second time.

    A database with no revision recorded and no log (a fresh one) gets the log as Alembic gets alembic_version's
    first row: only once the first revision has run, in that revision's transaction (Recorder.done). The first
    revision then sees the database as under a stock env.py, without this tool's table (a history that copies
    or counts every table it finds behaves as under its own env.py)."""
    present = exists(connection) if entries is _NOT_READ else entries is not None
    if not heads and not present:
        return Recorder(connection, settings, log_exists=False)
    if present and entries is not _NOT_READ:
        heal(connection, settings, script, heads, entries)  # its shape was checked when verify() read it
    else:
        ensure(connection)
        heal(connection, settings, script, heads)
    return Recorder(connection, settings)


def prune(connection: Connection, script: Any) -> list[str]:
    """`migrate --prune` (Django's name): delete the log rows of revisions that no version file defines any
    more (a squash's originals once deleted, say), oldest first; returns their ids. alembic_version must not
    record such a revision: that is an unknown revision, refused before anything is deleted."""
    from sqlalchemy import delete

    from project.core.history.scripts import check_known, current_heads

    check_known(script, current_heads(connection))
    gone = [rev for rev in read(connection) if not _defined(script, rev)]
    if gone:
        with connection.begin():
            connection.execute(delete(log_table).where(log_table.c.revision.in_(gone)))
    return gone


def squash_checksum(script: Any) -> str | None:
    """A squash run in place of its range is recorded with END's own checksum (None: not a squash), so a database
    that took the squash and one that took the originals agree, before and after the originals are deleted."""
    squashed = getattr(script.module, "replaces_checksum", None)
    return squashed if isinstance(squashed, str) else None


# --- while a migrate runs -------------------------------------------------------------------------------


class Recorder:
    """Writes the log rows of one run of migrator.run_plan."""

    def __init__(self, connection: Connection, settings: Any, *, log_exists: bool = True):
        self.connection = connection
        self.settings = settings
        self.transactional = connection.dialect.name not in NON_TRANSACTIONAL
        self.started_at = utc_now()
        self.started = time.perf_counter()
        self.running_id: int | None = None
        self.log_exists = log_exists  # False: created with the first row (see prepare)
        self._checksums: dict[str, str] = {}  # version file path -> checksum, for the steps of this run

    def expect(self, steps: list[Any]) -> None:
        """The steps this run will log: their files' checksums, computed (or read from the cache) at once
        rather than one file, and one cache write, per revision."""
        from project.core.history.checksums import file_checksums

        self._checksums.update(file_checksums([step.script.path for step in steps], self.settings))

    def _ensure(self, connection: Connection) -> None:
        """Create the log table on `connection`, in its transaction when one is open (the revision's)."""
        if not self.log_exists:
            metadata.create_all(connection, checkfirst=True)
            self.log_exists = True

    def _checksum(self, step: Any) -> str:
        from project.core.history.checksums import file_checksum

        squashed = squash_checksum(step.script)
        if squashed:
            return squashed
        path = step.script.path
        if path not in self._checksums:
            self._checksums[path] = file_checksum(path, self.settings)
        return self._checksums[path]

    def start(self, step: Any) -> None:
        """Before `step` runs (outside any transaction for the first, else in the previous step's)."""
        self.started_at, self.started = utc_now(), time.perf_counter()
        if self.transactional or not self.log_exists:
            # Not before the first revision of a fresh database (prepare): the log appears with its first row.
            # On MySQL/MariaDB that first revision has no `running` row, so a migrate killed in its middle
            # leaves no trace in the log (alembic_version records nothing either); a failure is still logged.
            return
        # MySQL/MariaDB: DDL commits as it goes, so say what is running before it starts.
        row = self._running_row(step)
        if self.connection.in_transaction():
            self.running_id = self._insert_one(row)
            return
        with self.connection.begin():
            self.running_id = self._insert_one(row)

    def _running_row(self, step: Any) -> dict[str, Any]:
        return new_row(self.connection, step.revision, "up" if step.forwards else "down", "running",
                       checksum=self._checksum(step), started_at=self.started_at)

    def _insert_one(self, row: dict[str, Any]) -> int:
        key = self.connection.execute(_INSERT, row).inserted_primary_key
        assert key is not None  # an INSERT of one row always has one
        return int(key[0])

    def done(self, connection: Connection, step: Any, following: Any = None, notes: str | None = None) -> None:
        """Inside the revision's transaction, from on_version_apply: the revision's row; then, when a step
        `following` it runs next, that step's start() in the same transaction. `notes`: what its backfills did
        (history.backfill), kept in the row's statements as SQL comments."""
        state = "applied" if step.forwards else "unapplied"
        values: dict[str, Any] = {"state": state, "duration": time.perf_counter() - self.started,
                                  "checksum": self._checksum(step), "statements": notes}
        self._ensure(connection)
        if self.running_id is not None and following is not None:
            # MySQL/MariaDB between two revisions: this one's row becomes `applied` and the next one's `running`
            # row is written by one statement (one round trip a revision fewer), in the same transaction as
            # before, so the log says the same thing at every instant.
            self.started_at, self.started = utc_now(), time.perf_counter()
            done = new_row(connection, step.revision, "up" if step.forwards else "down", **values)
            running = self._running_row(following)
            params = {"d_id": self.running_id, **{f"n_{n}": running.get(n) for n in _COLUMNS},
                      **{f"d_{n}": done.get(n) for n in _COLUMNS}}
            self.running_id = int(_execute_driver_sql(connection, "advance", params).lastrowid)
            return
        if self.running_id is not None:
            connection.execute(_UPDATE_ROW, {**values, "row_id": self.running_id})
            self.running_id = None
        else:
            insert_row(connection, new_row(connection, step.revision, "up" if step.forwards else "down",
                                           started_at=self.started_at, **values))
        if following is not None:
            self.start(following)

    def failed(self, step: Any, executed: list[str], exc: BaseException) -> None:
        """After `step` failed and its transaction ended: a `failed` row with the statements that ran (then
        the error, as an SQL comment). Never raises: the revision's own error is what the user must see."""
        from project.core.errors import cause_of

        ran = schema_statements_run(executed)
        values: dict[str, Any] = {"state": "failed", "duration": time.perf_counter() - self.started,
                                  "statements": "\n".join([*ran, f"-- failed: {cause_of(exc)}"])}
        try:
            end_transaction(self.connection)
            with self.connection.begin():
                self._ensure(self.connection)
                if self.running_id is not None:
                    self.connection.execute(log_table.update().where(log_table.c.id == self.running_id), values)
                else:
                    self.connection.execute(log_table.insert(), new_row(
                        self.connection, step.revision, "up" if step.forwards else "down",
                        checksum=self._checksum(step), started_at=self.started_at, **values))
        except Exception:  # noqa: BLE001 - a lost server: the log cannot be written, the error still reported
            pass

    def interrupted(self, step: Any, executed: list[str], why: str) -> None:
        """MySQL/MariaDB, after `step` was interrupted on a connection that is still usable: its `running` row
        becomes `failed` with the statements that ran and a last line `-- interrupted: WHY`, so the next
        migrate can say what of it is applied. Never raises."""
        if self.transactional or self.running_id is None:
            return  # nothing of it was kept (transactional DDL), or the log has no row of it
        ran = schema_statements_run(executed)
        values = {"state": "failed", "duration": time.perf_counter() - self.started,
                  "statements": "\n".join([*ran, f"-- interrupted: {why}"])}
        try:
            end_transaction(self.connection)
            with self.connection.begin():
                self.connection.execute(log_table.update().where(log_table.c.id == self.running_id), values)
        except Exception:  # noqa: BLE001 - the row stays `running`: the next migrate reads it as unknown
            pass

    def faked(self, steps: list[Any]) -> None:
        """migrate --fake: recorded as faked, nothing ran."""
        if not self.log_exists and self.connection.in_transaction():
            self._ensure(self.connection)  # with the version row --fake's stamp just wrote
        elif not self.log_exists:
            with self.connection.begin():
                self._ensure(self.connection)
        insert(self.connection, [
            new_row(self.connection, step.revision, "up" if step.forwards else "down",
                 "faked" if step.forwards else "unapplied", checksum=self._checksum(step), started_at=utc_now(),
                 duration=0.0)
            for step in steps])


# --- for read-only commands (showmigrations, check --database) ------------------------------------------


def read_log(settings: Any) -> dict[str, Entry]:
    """The log's newest row per revision, on a connection of its own (any driver)."""
    from project.core import db
    from project.core.db import migration_url, settings_connection

    def run() -> dict[str, Entry]:
        with settings_connection(settings, migration_url(settings)) as connection:
            return read(connection)

    return db.sync_entry(run)()


def problems(settings: Any, connection: Connection, script: Any, heads: tuple[str, ...]) -> list[str]:
    """What check --database reports of the log: every checksum mismatch, every failed revision."""
    entries = read(connection)
    found = [m.message for m in mismatches(settings, script, heads, entries)]
    applied = {rev.revision for rev in applied_revisions(script, heads)}
    for entry in entries.values():
        if entry.failed and entry.revision not in applied:
            found.append(f"revision {entry.revision} failed ({describe(entry)}): fix the database by hand, then run "
                         f"`manage.py repair {entry.revision}` (or fix the file and run `manage.py migrate`).")
    return found


def describe(entry: Entry) -> str:
    """'applied 2026-01-01 12:00:00 UTC, 0.012s' for showmigrations -v 2."""
    when = entry.started_at.strftime("%Y-%m-%d %H:%M:%S UTC") if entry.started_at else "(time unknown)"
    took = f", {entry.duration:.3f}s" if entry.duration is not None else ""
    text = f"{entry.state} {when}{took}"
    if entry.failed and entry.statements:
        text += f"; ran: {'; '.join(entry.statements.splitlines())}"
    return text


# --- offline deploy scripts (migrate --sql) --------------------------------------------------------------

# Who ran the script and from where, as the server sees it (SQLite has no users).
_OFFLINE_WHO = {
    "postgresql": ("CURRENT_TIMESTAMP", "current_user", "coalesce(host(inet_client_addr()), 'local')"),
    "mysql": ("UTC_TIMESTAMP()", "CURRENT_USER()", "SUBSTRING_INDEX(USER(), '@', -1)"),
    "sqlite": ("CURRENT_TIMESTAMP", "NULL", "NULL"),
}


def add_offline_rows(sql: Any, script: Any, settings: Any) -> None:
    """Give a deploy script (offline.OfflineSQL) the log: its CREATE TABLE IF NOT EXISTS before the first
    revision, and each revision's row as the revision's last statement (in its transaction where the engine
    has transactional DDL)."""
    from sqlalchemy import make_url
    from sqlalchemy.schema import CreateTable

    from project.core.history.checksums import file_checksums

    if not sql.revisions:
        return
    dialect_name = "mysql" if sql.dialect == "mariadb" else sql.dialect
    dialect = make_url(f"{dialect_name}://").get_dialect()()
    create = str(CreateTable(log_table, if_not_exists=True).compile(dialect=dialect)).strip()
    sql.revisions[0].setup.append(create)
    scripts = {rev.revision: script.get_revision(rev.revision) for rev in sql.revisions}
    sums = file_checksums([s.path for s in scripts.values()], settings)
    now, user, host = _OFFLINE_WHO.get(dialect_name, ("CURRENT_TIMESTAMP", "NULL", "NULL"))
    for rev in sql.revisions:
        direction, state = ("up", "applied") if rev.forwards else ("down", "unapplied")
        checksum = squash_checksum(scripts[rev.revision]) or sums[scripts[rev.revision].path]  # as online
        sql.revisions[sql.revisions.index(rev)].statements.append(
            f"INSERT INTO {TABLE_NAME} (revision, direction, state, checksum, started_at, db_user, client_host) "
            f"VALUES ('{rev.revision}', '{direction}', '{state}', '{checksum}', {now}, {user}, "
            f"{host})")
