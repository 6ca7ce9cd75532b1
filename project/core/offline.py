"""SQL for a range of revisions without connecting to the settings' database, exact on every engine.

PostgreSQL and MySQL/MariaDB: Alembic's own offline mode (``--sql``), with only the dialect's name.

SQLite: Alembic's offline mode cannot render a batch "move and copy" rebuild, because it needs the
table's current definition. Reconstructing that definition from the operations would be a second,
partial implementation of Alembic. Instead the history runs ONLINE against a scratch in-memory SQLite
database (built with the same engine recipe as real runs, project.core.db), brought to the range's start
first, and every statement the range executes is captured. The rebuild SQL is then by construction
what online mode runs on a database with that history. Read-only introspection (PRAGMA reads, SELECTs
on sqlite_master, the version lookups) is dropped; DDL, INSERT...SELECT copies, data changes and the
alembic_version bookkeeping are kept, with bound parameters rendered by SQLite's own quote().
Limit: a revision whose SQL depends on the rows it reads (a data migration looping over a SELECT)
sees the scratch database's empty tables; Alembic's own offline mode cannot render those either.

The result is a list of RevisionSQL (one per revision, in execution order); `render_review` prints it
for `sqlmigrate`, `render_script` turns it into a deploy script (header, per-revision transactions
where the engine has transactional DDL, a guard on alembic_version before each revision, destructive
statements marked) for `migrate --sql`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO, cast

from project.core.errors import MigrationError

DIALECTS = ("postgresql", "mysql", "sqlite")
VERSION_TABLE = "alembic_version"
# Engines whose DDL can be rolled back: each revision runs in its own transaction. SQLite's DDL is
# transactional too, and our online runs use it (project.core.db), although Alembic's SQLite impl says False.
TRANSACTIONAL = {"postgresql": True, "sqlite": True, "mysql": False, "mariadb": False}
GUARD_TABLE = "_migration_guard"
GUARD_CONSTRAINT = "alembic_version_mismatch"


class OfflineError(MigrationError):
    """A request for offline SQL that cannot be answered (unknown revision, unknown dialect...)."""


@dataclass(frozen=True)
class Range:
    """From the database state `start` (None: empty database) to `end`, upwards or downwards."""

    start: str | None
    end: str | None
    forwards: bool
    # The squashed view of the history when the move crosses a squash whole (migrator.Plan.script): the SQL is
    # then the squash's, as the online migrate runs it. None: the version files themselves.
    view: Any = field(default=None, compare=False, repr=False)

    @property
    def label(self) -> str:
        return f"{self.start or 'base'} -> {self.end or 'base'}"


@dataclass
class RevisionSQL:
    """What one revision executes, in order, without transaction control or terminators."""

    revision: str
    forwards: bool
    message: str
    before: tuple[str, ...]  # alembic_version before this revision (the guard checks it)
    after: tuple[str, ...]
    statements: list[str] = field(default_factory=list)
    # The version table's CREATE TABLE, when the range starts at an empty database.
    setup: list[str] = field(default_factory=list)
    # The revision's Script (its operations tell the destructive marks what a statement alone cannot).
    script: Any = field(default=None, compare=False, repr=False)

    @property
    def label(self) -> str:
        verb = "upgrade" if self.forwards else "downgrade"
        return f"{verb} {', '.join(self.before) or 'base'} -> {', '.join(self.after) or 'base'}"


@dataclass
class OfflineSQL:
    dialect: str
    range: Range
    revisions: list[RevisionSQL]
    # {table: [columns]} at the range's start, where known (SQLite): lets the destructive check tell
    # which columns a batch rebuild does not copy.
    tables_before: dict[str, list[str]] | None = None


# --- ranges -------------------------------------------------------------------------------------


def _resolve(script: Any, token: str) -> str | None:
    from project.core.errors import MigrationError
    from project.core.history.scripts import resolve_revision

    try:
        return resolve_revision(script, token)
    except MigrationError as exc:
        raise OfflineError(str(exc)) from None


def between(script: Any, start: str, end: str) -> Range:
    """The range from revision `start` (base/zero allowed) to `end`; a downgrade when end is behind."""
    from project.core.errors import MigrationError
    from project.core.history.plan import make_plan

    start_rev, end_rev = _resolve(script, start), _resolve(script, end)
    try:
        plan = make_plan(script, (start_rev,) if start_rev else (), end_rev or "base")
    except MigrationError as exc:
        raise OfflineError(str(exc)) from None
    return Range(start_rev, end_rev, plan.forwards or start_rev == end_rev, plan.script)


def phase_range(script: Any, rng: Range, phase: str) -> Range:
    """The part of a forward range before its first contract revision (`phase` expand), or from it on (contract).
    A range without a contract revision is all expand."""
    from project.core.history.phases import CONTRACT, declared_phase
    from project.core.history.plan import make_plan

    if not rng.forwards:
        raise OfflineError("--phase splits an upgrade: give a range that goes forwards.")
    steps = make_plan(script, (rng.start,) if rng.start else (), rng.end or "base").steps
    try:
        first = next((i for i, step in enumerate(steps) if declared_phase(step.script) == CONTRACT), len(steps))
    except MigrationError as exc:  # a phase that is not one
        raise OfflineError(str(exc)) from None
    split = steps[first - 1].revision if first else rng.start
    if phase == "expand":
        return between(script, rng.start or "base", split or "base")
    return between(script, split or "base", rng.end or "base")


def parse_range(script: Any, spec: str, *, backwards: bool = False) -> Range:
    """`sqlmigrate`'s argument: REV (that revision alone) or A:B. --backwards unapplies.

    A:B with B behind A is a downgrade already; with --backwards an upward A:B is read as
    "unapply A:B", i.e. B:A. A range crossing a squash whole renders the squash, as `migrate` runs it; REV alone
    is always that version file's own SQL (END of a squash included: ask for base:END to see the squash).
    """
    if ":" in spec:
        start, end = spec.split(":", 1)
        rng = between(script, start or "base", end or "head")
        if backwards and rng.forwards and rng.start != rng.end:
            rng = between(script, rng.end or "base", rng.start or "base")
        return rng
    revision = _resolve(script, spec)
    if revision is None:
        raise OfflineError("Name a revision (or a range A:B); 'base' holds no migration.")
    from alembic.util import to_tuple

    parents = to_tuple(script.get_revision(revision).down_revision, default=())
    if len(parents) > 1:
        raise OfflineError(f"{revision} merges {', '.join(parents)}: give a range instead, e.g. base:{revision}.")
    parent = parents[0] if parents else None
    return Range(revision, parent, False) if backwards else Range(parent, revision, True)


# --- generation -----------------------------------------------------------------------------------


def generate(dialect: str, rng: Range, settings: Any = None) -> OfflineSQL:
    """The SQL that migrating a database from rng.start to rng.end executes on `dialect`.

    `settings` only chooses the migrations directory (MIGRATIONS_DIR); its database is never used.
    """
    if rng.start == rng.end:
        return OfflineSQL(dialect, rng, [])
    if dialect == "sqlite":
        return _sqlite_online(rng, settings)
    return _alembic_offline(dialect, rng, settings)


class _Recorder:
    """Stands in for Alembic's output buffer: each static_output() is one write() (alembic/ddl/impl.py)."""

    def __init__(self, events: list[tuple[str, Any]]):
        self.events = events

    def write(self, text: str) -> int:
        self.events.append(("text", text))
        return len(text)

    def flush(self) -> None:
        pass


def _on_version_apply(events: list[tuple[str, Any]]) -> Any:
    def callback(*, step: Any, heads: set[str], **_: Any) -> None:
        events.append(("applied", (step, tuple(sorted(heads)))))

    return callback


def _alembic_offline(dialect: str, rng: Range, settings: Any) -> OfflineSQL:
    """Alembic's --sql for a dialect name, split into revisions."""
    from project.core.history.scripts import alembic_config

    events: list[tuple[str, Any]] = []
    cfg = alembic_config(
        settings, dialect_name=dialect, output_buffer=cast(TextIO, _Recorder(events)),
        on_version_apply=_on_version_apply(events),
    )
    try:
        _run(cfg, rng, as_sql=True)
    except Exception as exc:
        raise _render_failed(cfg, rng, events, exc, f"offline for {dialect} (no database connected)") from exc
    return OfflineSQL(dialect, rng, _split_offline(events, rng))


def _run(cfg: Any, rng: Range, *, as_sql: bool) -> None:
    """alembic.command.upgrade/downgrade over the range (`as_sql`: their --sql mode); on the squashed view when
    the range crosses a squash whole, which is the online plan's own decision (offline.between -> make_plan)."""
    from alembic import command

    from project.core.history.scripts import upgrade_or_downgrade

    target = rng.end or "base"
    start = rng.start or "base"
    if rng.view is not None:
        upgrade_or_downgrade(cfg, rng.view, target, rng.forwards, as_sql=as_sql,
                                       starting_rev=start if as_sql else None)
    else:
        (command.upgrade if rng.forwards else command.downgrade)(cfg, f"{start}:{target}" if as_sql else target,
                                                                 sql=as_sql)


def _split_offline(events: list[tuple[str, Any]], rng: Range) -> list[RevisionSQL]:
    """Alembic writes, per revision: BEGIN; [version table]; -- Running ...; statements; bookkeeping;
    (callback) COMMIT;. The outer BEGIN/COMMIT are ours to render again; a BEGIN/COMMIT inside a
    revision (an autocommit_block) is kept as a statement."""
    revisions: list[RevisionSQL] = []
    pending_setup: list[str] = []
    current: list[str] | None = None
    before = (rng.start,) if rng.start else ()
    for kind, payload in events:
        if kind == "applied":
            step, heads = payload
            revisions.append(_revision(step, before, heads, current or [], pending_setup))
            before, current, pending_setup = heads, None, []
            continue
        text = payload.strip()
        if not text:
            continue
        if text.startswith("-- Running "):
            current = []
        elif current is not None:
            current.append(_unterminated(text))
        elif text not in {"BEGIN;", "COMMIT;"}:
            pending_setup.append(_unterminated(text))
    return revisions


def _unterminated(text: str) -> str:
    # Alembic appends its command terminator (";"); the renderers add it back.
    return text[:-1].rstrip() if text.endswith(";") else text


def _revision(
    step: Any, before: tuple[str, ...], after: tuple[str, ...], statements: list[str], setup: list[str]
) -> RevisionSQL:
    script = step.up_revision
    doc = (script.doc or "").strip().splitlines() if script is not None else []
    return RevisionSQL(
        revision=step.up_revision_id,
        forwards=step.is_upgrade,
        message=doc[0] if doc else "",
        before=before,
        after=after,
        statements=list(statements),
        setup=list(setup),
        script=script,
    )


# --- SQLite: online against a scratch database ---------------------------------------------------


def _sqlite_online(rng: Range, settings: Any) -> OfflineSQL:
    from alembic import command

    from project.core.history.scratch import scratch_sqlite
    from project.core.history.scripts import alembic_config

    # At the range's start; a replay of the earlier revisions comes from project.core.history.scratch's cache.
    with scratch_sqlite(settings, rng.start) as connection:
        tables = _columns(connection)
        events: list[tuple[str, Any]] = []
        with _capturing(connection, events):
            if rng.start is None:
                # The version table is created before the first revision runs; stamping base on the
                # empty database runs exactly that code path (MigrationContext._ensure_version_table).
                command.stamp(alembic_config(settings, connection=connection), "base")
                _commit(connection)
                events.append(("setup-done", None))
            cfg = alembic_config(settings, connection=connection, on_version_apply=_on_version_apply(events))
            try:
                _run(cfg, rng, as_sql=False)
            except Exception as exc:
                raise _render_failed(cfg, rng, events, exc, "in a scratch SQLite database (your database is "
                                     "not touched)") from exc
    return OfflineSQL("sqlite", rng, _split_online(events, rng), tables)


def _render_failed(cfg: Any, rng: Range, events: list[tuple[str, Any]], exc: Exception, where: str) -> OfflineError:
    """One line naming the revision (id and file) that could not be rendered, and where it was run."""
    from project.core.errors import cause_of
    from project.core.history import squash
    from project.core.history.plan import describe_step, failed_step
    from project.core.history.scripts import script_directory

    done = sum(1 for kind, _ in events if kind == "applied")
    step = failed_step(script_directory(cfg), rng.start, rng.end, done)
    carried = squash.carried_revision(exc, step.script) if step is not None else None
    if carried:  # a squash crossed whole: name the original whose code failed, carried verbatim
        where = f"(in {carried}, which it carries verbatim) {where}"
    hint = ""
    if "offline for" in where:
        # Offline, op.get_bind() is a mock whose execute() returns None: a revision that reads rows fails here.
        hint = (" If it reads the database through op.get_bind(), it can only run online "
                "(`manage.py migrate`), not as offline SQL.")
    return OfflineError(f"Cannot render {describe_step(step)} {where}: {cause_of(exc)}.{hint}")


def _commit(connection: Any) -> None:
    if connection.in_transaction():
        connection.commit()


def _columns(connection: Any) -> dict[str, list[str]]:
    from sqlalchemy import inspect

    inspector = inspect(connection)
    tables = {name: [c["name"] for c in inspector.get_columns(name)] for name in inspector.get_table_names()}
    _commit(connection)
    return tables


@contextmanager
def _capturing(connection: Any, events: list[tuple[str, Any]]) -> Iterator[None]:
    """Record every statement `connection` executes that changes something, parameters inlined."""
    from sqlalchemy import event

    def before_cursor_execute(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                              executemany: bool) -> None:
        if _is_read_only(statement):
            return
        for params in (parameters if executemany else [parameters]):
            events.append(("text", inline_parameters(statement, params)))

    event.listen(connection, "before_cursor_execute", before_cursor_execute)
    try:
        yield
    finally:
        event.remove(connection, "before_cursor_execute", before_cursor_execute)


_READ_ONLY = re.compile(r"^\s*(SELECT|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|EXPLAIN)\b", re.IGNORECASE)
_PRAGMA = re.compile(r"^\s*PRAGMA\b", re.IGNORECASE)


def _is_read_only(statement: str) -> bool:
    """Introspection and transaction control (the renderers write their own BEGIN/COMMIT).

    A PRAGMA that sets something (``PRAGMA foreign_keys=OFF``) is kept; reads (table_info...) are not.
    A statement starting with WITH is kept: it may be an UPDATE/INSERT with a CTE, and keeping a read
    is harmless where dropping a write would not be.
    """
    if _PRAGMA.match(statement):
        return "=" not in statement
    return bool(_READ_ONLY.match(statement))


def _split_online(events: list[tuple[str, Any]], rng: Range) -> list[RevisionSQL]:
    revisions: list[RevisionSQL] = []
    setup: list[str] = []
    current: list[str] = []
    before = (rng.start,) if rng.start else ()
    for kind, payload in events:
        if kind == "setup-done":
            setup, current = current, []
        elif kind == "applied":
            step, heads = payload
            revisions.append(_revision(step, before, heads, current, setup))
            before, current, setup = heads, [], []
        else:
            current.append(payload.strip())
    return revisions


_sqlite_quoter: Any = None


def sqlite_literal(value: Any) -> str:
    """`value` as a SQLite literal, by SQLite itself (its quote() function)."""
    import sqlite3

    global _sqlite_quoter
    if _sqlite_quoter is None:
        _sqlite_quoter = sqlite3.connect(":memory:", check_same_thread=False)
    return str(_sqlite_quoter.execute("SELECT quote(?)", (value,)).fetchone()[0])


def inline_parameters(statement: str, parameters: Any) -> str:
    """`statement` with its ?, ?NNN or :name placeholders replaced by SQLite literals.

    Placeholders inside string literals, quoted identifiers and comments are left alone.
    """
    if not parameters:
        return statement
    named = isinstance(parameters, dict)
    out: list[str] = []
    position = 0
    i, n = 0, len(statement)
    while i < n:
        char = statement[i]
        if char in "'\"`[":
            close = "]" if char == "[" else char
            j = statement.find(close, i + 1)
            while j != -1 and close != "]" and statement[j + 1:j + 2] == close:  # doubled quote escapes
                j = statement.find(close, j + 2)
            j = n - 1 if j == -1 else j
            out.append(statement[i:j + 1])
            i = j + 1
        elif statement.startswith("--", i) or statement.startswith("/*", i):
            end = statement.find("\n", i) if char == "-" else statement.find("*/", i + 2) + 1
            end = n - 1 if end <= 0 else end
            out.append(statement[i:end + 1])
            i = end + 1
        elif char == "?" and not named:
            match = re.match(r"\?(\d*)", statement[i:])
            assert match is not None
            index = int(match.group(1)) - 1 if match.group(1) else position
            position = index + 1
            out.append(sqlite_literal(parameters[index]))
            i += match.end()
        elif char in ":@$" and named and (match := re.match(r"[:@$]([A-Za-z_]\w*)", statement[i:])):
            out.append(sqlite_literal(parameters[match.group(1)]))
            i += match.end()
        else:
            out.append(char)
            i += 1
    return "".join(out)


# --- rendering ------------------------------------------------------------------------------------


def _terminated(statement: str) -> str:
    return statement if statement.rstrip().endswith(";") else statement + ";"


def _is_bookkeeping(statement: str) -> bool:
    """A write to alembic_version or to a backfill's progress rows (project.core.history.backfill): the tool's."""
    from project.core.bookkeeping import BACKFILL_TABLE

    tables = f"({VERSION_TABLE}|{BACKFILL_TABLE})"
    return re.match(rf"^\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+{tables}\b", statement, re.I) is not None


def destructive_marks(sql: OfflineSQL) -> dict[tuple[int, int], list[str]]:
    """{(revision index, statement index): findings} for the statements that can lose data.

    The alembic_version bookkeeping is left out (moving the version is not data loss); SQLite's
    batch rebuilds are judged by project.core.inspection.destructive, which knows which columns a rebuild copies.
    """
    from project.core.inspection.destructive import destructive_script, not_null_changes

    keys: list[tuple[int, int]] = []
    statements: list[str] = []
    for r, revision in enumerate(sql.revisions):
        for s, statement in enumerate(revision.statements):
            if not _is_bookkeeping(statement):
                keys.append((r, s))
                statements.append(statement)
    hints: dict[int, set[str]] = {}

    def not_null(index: int) -> set[str]:
        """What the statement's revision makes NOT NULL, from its operations: a MySQL MODIFY or a SQLite rebuild
        restates a column's NOT NULL whether or not it changes (asked only then, once per revision)."""
        r = keys[index][0]
        if r not in hints:
            revision = sql.revisions[r]
            hints[r] = not_null_changes(revision.script, revision.forwards, sql.dialect) if revision.script else set()
        return hints[r]

    findings = destructive_script(statements, sql.dialect, tables=sql.tables_before, not_null=not_null)
    return {key: found for key, found in zip(keys, findings, strict=True) if found}


def render_review(sql: OfflineSQL) -> str:
    """`sqlmigrate`'s output: what each revision runs, as the engine runs it, destructive statements marked."""
    transactional = TRANSACTIONAL.get(sql.dialect, False)
    marks = destructive_marks(sql)
    blocks: list[str] = []
    for r, revision in enumerate(sql.revisions):
        title = f"-- Running {revision.label}" + (f": {revision.message}" if revision.message else "")
        blocks.append(title)
        prelude = [_terminated(s) for s in revision.setup]
        blocks.extend(_revision_body(revision, marks, r, transactional, prelude))
    if not sql.revisions:
        blocks.append(f"-- No migrations between {sql.range.label}.")
    return "\n\n".join(blocks) + "\n"


def _revision_body(
    revision: RevisionSQL, marks: dict[tuple[int, int], list[str]], index: int, transactional: bool,
    prelude: list[str],
) -> list[str]:
    """One revision's blocks: [BEGIN;] the prelude, its statements (destructive ones marked), [COMMIT;]."""
    body = [*prelude, *(_marked(s, marks.get((index, i))) for i, s in enumerate(revision.statements))]
    return ["BEGIN;", *body, "COMMIT;"] if transactional else body


def _marked(statement: str, findings: list[str] | None) -> str:
    lines = [f"-- DESTRUCTIVE: {finding}" for finding in findings or []]
    return "\n".join([*lines, _terminated(statement)])


def render_script(
    sql: OfflineSQL, *, tool: str = "manage.py migrate --sql", generated_at: datetime | None = None
) -> str:
    """A deploy script a DBA can review and apply with the engine's own client.

    Each revision: [BEGIN;] a guard that stops unless alembic_version is exactly where this revision
    starts, its statements and bookkeeping, [COMMIT;]. A script applied twice therefore stops at its
    first guard before changing anything.
    """
    import alembic

    dialect = sql.dialect
    transactional = TRANSACTIONAL.get(dialect, False)
    marks = destructive_marks(sql)
    when = (generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S UTC")
    direction = "upgrade" if sql.range.forwards else "downgrade"
    destructive = len(marks)
    header = [
        f"-- Migration script for {dialect}: {direction} {sql.range.label} ({len(sql.revisions)} revision(s))",
        f"-- Generated {when} by `{tool}` (Alembic {alembic.__version__}), without connecting to any database.",
        f"-- Apply with: {APPLY_HINT.get(dialect, 'the engine client')}",
        "-- Every revision first checks alembic_version and stops the script if the database is not exactly",
        "-- where that revision starts (already applied, or another version): nothing of it runs then.",
        "-- " + (
            f"{destructive} statement(s) can lose data: each is marked with '-- DESTRUCTIVE:' below."
            if destructive else "No statement in this script drops or deletes data."
        ),
        "-- " + (
            "Each revision runs in its own transaction." if transactional
            else "MySQL/MariaDB cannot roll back DDL: a failing revision may be left half-applied."
        ),
    ]
    blocks = ["\n".join(header)]
    if dialect == "sqlite":
        # sqlite3's shell otherwise carries on after an error; the guards rely on stopping.
        blocks.append(".bail on")
    if dialect != "postgresql" and sql.revisions:
        blocks.append(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {GUARD_TABLE} "
            f"(ok INTEGER NOT NULL, CONSTRAINT {GUARD_CONSTRAINT} CHECK (ok = 1));"
        )
    for r, revision in enumerate(sql.revisions):
        title = f"{revision.label}" + (f": {revision.message}" if revision.message else "")
        blocks.append(f"-- {'-' * 96}\n-- {title}\n-- {'-' * 96}")
        # Online runs skip the CREATE when the table exists (emptied by a downgrade to base).
        prelude = [*(_terminated(_if_not_exists(s)) for s in revision.setup), guard(dialect, revision)]
        blocks.extend(_revision_body(revision, marks, r, transactional, prelude))
    if not sql.revisions:
        blocks.append(f"-- No migrations between {sql.range.label}: nothing to do.")
    return "\n\n".join(blocks) + "\n"


APPLY_HINT = {
    "postgresql": "psql -v ON_ERROR_STOP=1 -f migration.sql DATABASE",
    "mysql": "mariadb DATABASE < migration.sql   (or mysql)",
    "mariadb": "mariadb DATABASE < migration.sql",
    "sqlite": "sqlite3 app.db < migration.sql",
}


def _if_not_exists(statement: str) -> str:
    return re.sub(rf"^CREATE TABLE {VERSION_TABLE}\b", f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE}", statement)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _version_matches(expected: tuple[str, ...]) -> str:
    """SQL that is true when alembic_version holds exactly `expected`."""
    total = f"(SELECT COUNT(*) FROM {VERSION_TABLE})"
    if not expected:
        return f"{total} = 0"
    listed = ", ".join(_literal(v) for v in expected)
    matching = f"(SELECT COUNT(*) FROM {VERSION_TABLE} WHERE version_num IN ({listed}))"
    return f"{total} = {len(expected)} AND {matching} = {len(expected)}"


def guard(dialect: str, revision: RevisionSQL) -> str:
    """A statement that fails, stopping the client, unless alembic_version is `revision.before`."""
    expected = ", ".join(revision.before) or "empty (base)"
    comment = f"-- Guard: stop unless alembic_version is {expected}."
    condition = _version_matches(revision.before)
    if dialect == "postgresql":
        message = (
            f"alembic_version is %, but {revision.label} starts from {expected}: "
            "was this script applied already? Stopped before changing anything in this revision."
        ).replace("'", "''")
        actual = f"(SELECT coalesce(string_agg(version_num, ', '), 'empty') FROM {VERSION_TABLE})"
        return (
            f"{comment}\nDO $$\nBEGIN\n    IF NOT ({condition}) THEN\n"
            f"        RAISE EXCEPTION '{message}', {actual};\n    END IF;\nEND\n$$;"
        )
    # MySQL/MariaDB and SQLite have no anonymous blocks that raise (MySQL's SIGNAL needs a stored
    # program): a CHECK constraint on a temporary table fails the INSERT instead.
    return f"{comment}\nINSERT INTO {GUARD_TABLE} (ok) VALUES (CASE WHEN {condition} THEN 1 ELSE 0 END);"


def render_all(sections: list[tuple[str, str]]) -> str:
    """Several dialects' SQL one after another, each under a clear header."""
    return "\n".join(f"-- ===== {dialect} =====\n\n{text}" for dialect, text in sections)


def deploy_script(settings: Any, target: str, from_revision: str = "base", *, dialect: str | None = None,
                  phase: str | None = None) -> str:
    """`migrate --sql`: the deploy script for the settings' engine, read from the URL's name only.

    The database's current revision is unknown offline, so it is `from_revision` (default base), or
    `target` is a range A:B as in Alembic's --sql. `phase`: only the range's expand part (up to its first
    contract revision: run before the new code starts) or the rest (run once no old code runs), docs/phases.md.
    """
    from sqlalchemy import make_url

    from project.core.history.scripts import alembic_config, script_directory

    dialect = dialect or make_url(settings.DATABASE_URL).get_backend_name()
    script = script_directory(alembic_config(settings))
    start, end = target.split(":", 1) if ":" in target else (from_revision, target)
    rng = between(script, start or "base", end or "head")
    if phase is not None:
        rng = phase_range(script, rng, phase)
    sql = generate(dialect, rng, settings)
    from project.core.history.applied_log import add_offline_rows

    add_offline_rows(sql, rng.view or script, settings)  # the script writes the applied log too
    if sql.revisions:  # and creates the fleet's table, as online migrate does (runner.fleet.ensure)
        from project.core.runner import fleet

        sql.revisions[0].setup.append(fleet.offline_create(sql.dialect))
    return render_script(sql, tool="manage.py migrate --sql")
