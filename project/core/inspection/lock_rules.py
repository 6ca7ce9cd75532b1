"""Locks and rewrites: the steps of a revision that block a busy table for longer than a metadata change.

For every revision and every engine (PostgreSQL, MySQL/MariaDB, SQLite) the revision's upgrade() runs
under the destructive classifier's recording `Operations` (inspection.destructive), offline for that engine,
so dialect guards take the branch that engine takes. The recorded Alembic operation objects are read
directly; SQL a revision sends with op.execute is read with sqlglot in the engine's dialect. Each
finding knows the line of the revision file that made it (the frame that called `op.*`).

A rule fires only on a table that exists before the revision: a table created in the same revision
is empty, so there is nothing to lock. Silencing, with a reason that the lint insists on:
`# check: ignore[L201] small table, 200 rows` on the reported line, or `# check: ignore-file[L201] ...`
anywhere in the revision for all of it; the SILENCED_CHECKS setting as for the other rules.
"""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from project.core.inspection.problem import Problem, relative

ENGINES = ("postgresql", "mysql", "sqlite")

# id: (engines, what happens, the safe way). docs/safety.md, "Locks and rewrites", lists the same.
RULES: dict[str, tuple[str, str, str]] = {
    "L201": ("postgresql", "CREATE INDEX blocks writes for the whole build",
             "create it CONCURRENTLY (postgresql_concurrently=True) in a revision run outside a transaction"),
    "L202": ("postgresql, mysql", "a column type change rewrites (PostgreSQL) or copies (MySQL) the table "
             "under a lock", "add a new column, backfill it in batches, switch the app, drop the old one"),
    "L203": ("postgresql", "SET NOT NULL scans the table under an ACCESS EXCLUSIVE lock",
             "add CHECK (col IS NOT NULL) NOT VALID, VALIDATE it later, then SET NOT NULL (no scan on PG 12+)"),
    "L204": ("postgresql", "add_column with a volatile default rewrites the table",
             "add the column without a default, set the default, backfill in batches"),
    "L205": ("postgresql", "a foreign key or CHECK without NOT VALID scans the table(s) under a lock",
             "add it with postgresql_not_valid=True, then VALIDATE CONSTRAINT in a later revision"),
    "L206": ("postgresql", "a unique constraint builds its index in place, blocking writes",
             "CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... UNIQUE USING INDEX"),
    "L207": ("postgresql, mysql, sqlite", "renaming a column or table breaks the running app still reading "
             "the old name", "expand/contract: add the new one, write both, move reads, drop the old later"),
    "L208": ("mysql", "reordering or removing ENUM values copies the table",
             "only append new values at the end (INSTANT)"),
    "L209": ("mysql", "an ALTER that runs ALGORITHM=COPY blocks writes while the table is copied",
             "use an INPLACE/INSTANT form (e.g. foreign_key_checks=0 for a foreign key) or a tool like gh-ost"),
    "L210": ("sqlite", "a batch operation rebuilds the table (copies every row) under the write lock",
             "fine on small tables; schedule it on big ones"),
}
NO_REASON = "L200"  # a silence without a reason

# Functions whose value differs per row: PostgreSQL must rewrite the table to store them (PG >= 11
# stores a constant or stable default, now() included, in the catalogue).
VOLATILE_FUNCTIONS = {"RANDOM", "GEN_RANDOM_UUID", "UUID_GENERATE_V1", "UUID_GENERATE_V4", "CLOCK_TIMESTAMP",
                      "TIMEOFDAY", "NEXTVAL", "TXID_CURRENT", "UUID", "SETSEED"}


@dataclass(frozen=True)
class Finding:
    rule: str
    engine: str
    what: str
    line: int | None

    @property
    def safe(self) -> str:
        return RULES[self.rule][2]

    def __str__(self) -> str:
        return f"{self.rule} {self.engine}: {self.what} -> {self.safe}"


@dataclass(frozen=True)
class LockProblem(Problem):
    """A Problem printed as `FILE:LINE: L201 postgresql: what happens -> the safe way`."""

    def __str__(self) -> str:

        if self.path is None:
            return self.message
        return f"{relative(self.path)}{f':{self.line}' if self.line else ''}: {self.message}"


# --- recording -----------------------------------------------------------------------------------


class _LocatedOps(list[Any]):
    """The recorder's list: each operation gets the revision file's line that made it."""

    def __init__(self, filename: str):
        super().__init__()
        self.filename = filename

    def append(self, operation: Any) -> None:
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename != self.filename:
            frame = frame.f_back  # type: ignore[assignment]
        operation.info["line"] = frame.f_lineno if frame is not None else None
        super().append(operation)


class _LocatedSQL(io.StringIO):
    """The offline context's output: SQL a revision sends through op.get_bind() (not an `op.*` call), kept
    in order with the operations as an ExecuteSQLOp, so it is read like op.execute and gets its line."""

    def __init__(self, recorded: _LocatedOps):
        super().__init__()
        self.recorded = recorded

    def write(self, text: str) -> int:
        from alembic.operations import ops

        if text.strip():
            self.recorded.append(ops.ExecuteSQLOp(text.strip()))
        return len(text)


def record(script: Any, engine: str, forwards: bool = True) -> tuple[list[Any], str | None]:
    """The operations a revision's upgrade() (or downgrade()) makes on `engine`, offline, with lines."""
    from alembic.runtime.migration import MigrationContext

    from project.core.inspection.destructive import _recording

    recorded = _LocatedOps(script.module.__file__)
    context = MigrationContext.configure(
        dialect_name=engine, opts={"as_sql": True, "output_buffer": _LocatedSQL(recorded), "literal_binds": True})
    error = None
    with _recording(context, recorded):
        try:
            (script.module.upgrade if forwards else script.module.downgrade)()
        except Exception as exc:  # reported by P110/the plan; what was recorded so far is still read
            error = f"{type(exc).__name__}: {exc}"
    return list(recorded), error


def revision_findings(script: Any, engine: str, forwards: bool = True) -> list[Finding]:
    """What one revision does on `engine` that locks or rewrites an existing table, unsilenced."""
    engine = "mysql" if engine == "mariadb" else engine
    operations, _ = record(script, engine, forwards)
    created: set[str] = set()
    rebuilt: set[int] = set()
    findings: list[Finding] = []
    for operation in operations:
        line = operation.info.get("line")
        for rule, what in _operation_findings(operation, engine, created, rebuilt):
            findings.append(Finding(rule, engine, what, line))
    return list(dict.fromkeys(findings))


# --- rules on operation objects -------------------------------------------------------------------


def _operation_findings(operation: Any, engine: str, created: set[str], rebuilt: set[int]
                        ) -> Iterator[tuple[str, str]]:
    from alembic.operations import ops

    if isinstance(operation, ops.CreateTableOp):
        created.add(operation.table_name)
        return
    if isinstance(operation, ops.ExecuteSQLOp):
        yield from _sql_findings(_sql_text(operation.sqltext, engine), engine, created)
        return
    # Alembic names the table `source_table` on a foreign key, `table_name` elsewhere.
    table = getattr(operation, "table_name", None) or getattr(operation, "source_table", None)
    if table is None or table in created:
        if isinstance(operation, ops.RenameTableOp) and table in created:
            created.add(operation.new_table_name)  # still this revision's new, empty table
        return
    if engine == "sqlite":
        yield from _sqlite_rebuild(operation, table, rebuilt)
    if isinstance(operation, ops.RenameTableOp):
        yield "L207", f"renames table {table} to {operation.new_table_name}"
    elif isinstance(operation, ops.AlterColumnOp):
        yield from _alter_column(operation, engine, table)
    elif isinstance(operation, ops.AddColumnOp):
        yield from _add_column(operation.column, engine, table)
    elif engine == "postgresql":
        yield from _postgresql_constraint(operation, table)
    elif engine == "mysql":
        yield from _mysql_copy(operation, table)


def _sqlite_rebuild(operation: Any, table: str, rebuilt: set[int]) -> Iterator[tuple[str, str]]:
    """L210: Alembic's rule for a batch that must move and copy (alembic/ddl/sqlite.py,
    requires_recreate_in_batch): anything but create_index, drop_index and add_column without an
    expression default; every op with recreate="always". Once per batch block."""
    from alembic.operations import ops

    batch = operation.info.get("batch")
    if batch is None or batch[1] == "never" or batch[0] in rebuilt:
        return
    light = isinstance(operation, (ops.CreateIndexOp, ops.DropIndexOp)) or (
        isinstance(operation, ops.AddColumnOp) and not _expression_default(operation.column))
    if batch[1] == "always" or not light:
        rebuilt.add(batch[0])
        yield "L210", f"rebuilds table {table} (batch move and copy: every row is copied)"


def _expression_default(column: Any) -> bool:
    import sqlalchemy as sa

    default = column.server_default
    return isinstance(default, sa.DefaultClause) and isinstance(default.arg, sa.sql.ClauseElement) or \
        isinstance(default, sa.Computed) and bool(default.persisted)


def _alter_column(operation: Any, engine: str, table: str) -> Iterator[tuple[str, str]]:
    column = f"{table}.{operation.column_name}"
    if operation.modify_type is not None:
        if engine == "mysql" and _is_enum(operation.modify_type) and _is_enum(operation.existing_type):
            old, new = list(operation.existing_type.enums), list(operation.modify_type.enums)
            if new[:len(old)] != old:
                yield "L208", f"changes the ENUM values of {column} other than by appending: copies the table"
        elif engine == "postgresql":
            yield "L202", f"changes the type of {column}: rewrites {table} under an ACCESS EXCLUSIVE lock"
        elif engine == "mysql" and not _mysql_inplace_widening(operation.existing_type, operation.modify_type):
            yield "L202", f"changes the type of {column}: copies {table} (ALGORITHM=COPY), blocking writes"
    if engine == "postgresql" and operation.modify_nullable is False and operation.existing_nullable is not False:
        yield "L203", f"SET NOT NULL on {column} scans {table} under an ACCESS EXCLUSIVE lock"
    if operation.modify_name is not None:
        yield "L207", f"renames column {column} to {operation.modify_name} while the running app reads the old name"


def _mysql_inplace_widening(old: Any, new: Any) -> bool:
    """A longer VARCHAR keeping its number of length bytes (1 up to 255 bytes, utf8mb4: 4 bytes a character)
    is INPLACE on MySQL/MariaDB (MySQL manual, "Online DDL Operations": Extending VARCHAR column size)."""
    import sqlalchemy as sa

    plain = (sa.String,)
    if not (isinstance(old, plain) and isinstance(new, plain)) or isinstance(old, (sa.Text, sa.Enum)) \
            or isinstance(new, (sa.Text, sa.Enum)) or not old.length or not new.length:
        return False
    return new.length >= old.length and (old.length * 4 <= 255) == (new.length * 4 <= 255)


def _is_enum(type_: Any) -> bool:
    import sqlalchemy as sa

    return isinstance(type_, sa.Enum)


def _add_column(column: Any, engine: str, table: str) -> Iterator[tuple[str, str]]:
    if engine == "postgresql":
        default = _default_sql(column, engine)
        if default and _volatile(default):
            yield "L204", f"adds {table}.{column.name} with the volatile default {default}: rewrites {table}"
        if column.foreign_keys:
            yield "L205", f"adds {table}.{column.name} with a foreign key (no NOT VALID possible inline): " \
                          f"scans {table} under a lock blocking writes to both tables"
    elif engine == "mysql" and column.foreign_keys:
        yield "L209", f"adds {table}.{column.name} with a foreign key: ALGORITHM=COPY while foreign_key_checks is on"


def _default_sql(column: Any, engine: str) -> str | None:
    import sqlalchemy as sa

    default = column.server_default
    if not isinstance(default, sa.DefaultClause):
        return None
    if isinstance(default.arg, str):
        return None  # a constant: stored in the catalogue
    return _sql_text(default.arg, engine)


def _volatile(sql: str) -> bool:
    from sqlglot import Tokenizer, TokenType

    try:
        tokens = Tokenizer().tokenize(sql)
    except Exception:
        return False
    return any(t.token_type != TokenType.STRING and t.text.upper() in VOLATILE_FUNCTIONS for t in tokens)


def _postgresql_constraint(operation: Any, table: str) -> Iterator[tuple[str, str]]:
    from alembic.operations import ops

    if isinstance(operation, ops.CreateIndexOp) and not operation.kw.get("postgresql_concurrently"):
        unique = "unique " if operation.unique else ""
        yield "L201", f"creates {unique}index {operation.index_name} on {table} without CONCURRENTLY: " \
                      f"blocks writes to {table} for the whole build"
    elif isinstance(operation, (ops.CreateForeignKeyOp, ops.CreateCheckConstraintOp)) \
            and not operation.kw.get("postgresql_not_valid"):
        kind = "foreign key" if isinstance(operation, ops.CreateForeignKeyOp) else "CHECK constraint"
        yield "L205", f"adds {kind} {operation.constraint_name} on {table} without NOT VALID: scans {table} " \
                      "under a lock that blocks writes"
    elif isinstance(operation, ops.CreateUniqueConstraintOp):
        yield "L206", f"adds unique constraint {operation.constraint_name} on {table}: builds its index in " \
                      "place, blocking writes"


def _mysql_copy(operation: Any, table: str) -> Iterator[tuple[str, str]]:
    from alembic.operations import ops

    if isinstance(operation, (ops.CreateForeignKeyOp, ops.CreateCheckConstraintOp)):
        kind = "foreign key" if isinstance(operation, ops.CreateForeignKeyOp) else "CHECK constraint"
        yield "L209", f"adds {kind} {operation.constraint_name} on {table}: ALGORITHM=COPY (the rows are checked " \
                      "while the table is copied)"
    elif isinstance(operation, ops.DropConstraintOp) and operation.constraint_type == "primary":
        yield "L209", f"drops the primary key of {table}: ALGORITHM=COPY"


# --- rules on SQL ---------------------------------------------------------------------------------


def _sql_text(sqltext: Any, engine: str) -> str:
    """SQL as `engine` would run it: a string, a text() clause, or a construct compiled for the engine."""
    import sqlalchemy as sa

    if isinstance(sqltext, str):
        return sqltext
    if isinstance(sqltext, sa.TextClause):
        return sqltext.text
    try:
        from sqlalchemy.dialects import registry

        dialect = registry.load(engine)()
        return str(sqltext.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    except Exception:
        return ""


def _sql_findings(sql: str, engine: str, created: set[str]) -> Iterator[tuple[str, str]]:
    from project.core.inspection.destructive import _name, _parse

    for statement in _parse(sql, engine):
        yield from _statement_findings(statement, engine, created, _name)


def _statement_findings(statement: Any, engine: str, created: set[str], name: Any) -> Iterator[tuple[str, str]]:
    from sqlglot import exp

    if isinstance(statement, exp.Create):
        kind = (statement.args.get("kind") or "").upper()
        if kind == "TABLE":
            target = statement.this.this if isinstance(statement.this, exp.Schema) else statement.this
            created.add(name(target))
        elif kind == "INDEX" and engine == "postgresql" and not statement.args.get("concurrently"):
            table = name(statement.this.args.get("table")) if statement.this.args.get("table") else "?"
            if table not in created:
                yield "L201", f"creates index {statement.this.name} on {table} without CONCURRENTLY: blocks " \
                              f"writes to {table} for the whole build"
        return
    if not isinstance(statement, exp.Alter) or name(statement.this) in created:
        return
    table = name(statement.this)
    not_valid = bool(statement.args.get("not_valid"))
    for action in statement.args.get("actions") or []:
        yield from _alter_action(action, engine, table, not_valid, name)
    copy = any(isinstance(o, exp.AlgorithmProperty) and o.name.upper() == "COPY"
               for o in statement.args.get("options") or [])
    if engine == "mysql" and copy:
        yield "L209", f"alters {table} with ALGORITHM=COPY"


def _alter_action(action: Any, engine: str, table: str, not_valid: bool, name: Any) -> Iterator[tuple[str, str]]:
    from sqlglot import exp

    if isinstance(action, (exp.AlterRename, exp.RenameColumn)):
        kind = "table" if isinstance(action, exp.AlterRename) else "column"
        yield "L207", f"renames {kind} {table if kind == 'table' else table + '.' + name(action.this)}"
    elif isinstance(action, exp.AlterColumn) and action.args.get("dtype") is not None and engine != "sqlite":
        verb = "rewrites" if engine == "postgresql" else "copies (ALGORITHM=COPY)"
        yield "L202", f"changes the type of {table}.{action.name}: {verb} {table}"
    elif isinstance(action, exp.ModifyColumn) and engine == "mysql":
        yield "L202", f"redefines {table}.{action.this.name} (MODIFY/CHANGE): copies {table} if the type changes"
    elif isinstance(action, exp.AlterColumn) and action.args.get("allow_null") is False and engine == "postgresql":
        yield "L203", f"SET NOT NULL on {table}.{action.name} scans {table} under an ACCESS EXCLUSIVE lock"
    elif isinstance(action, exp.ColumnDef) and engine == "postgresql":
        for constraint in action.args.get("constraints") or []:
            kind = constraint.args.get("kind")
            if isinstance(kind, exp.DefaultColumnConstraint) and _volatile(kind.this.sql("postgres")):
                yield "L204", f"adds {table}.{action.name} with a volatile default: rewrites {table}"
            if isinstance(kind, exp.Reference):
                yield "L205", f"adds {table}.{action.name} with a foreign key: scans {table} under a lock"
    elif isinstance(action, exp.AddConstraint):
        for constraint in action.expressions:
            for part in getattr(constraint, "expressions", None) or [constraint]:
                yield from _added_constraint(part, engine, table, not_valid)


def _added_constraint(part: Any, engine: str, table: str, not_valid: bool) -> Iterator[tuple[str, str]]:
    from sqlglot import exp

    checked = isinstance(part, (exp.ForeignKey, exp.CheckColumnConstraint))
    kind = "foreign key" if isinstance(part, exp.ForeignKey) else "CHECK constraint"
    if checked and engine == "postgresql" and not not_valid:
        yield "L205", f"adds a {kind} on {table} without NOT VALID: scans {table} under a lock"
    elif checked and engine == "mysql":
        yield "L209", f"adds a {kind} on {table}: ALGORITHM=COPY"
    elif isinstance(part, exp.UniqueColumnConstraint) and engine == "postgresql":
        yield "L206", f"adds a unique constraint on {table}: builds its index in place, blocking writes"


# --- silences and the check -----------------------------------------------------------------------

_SILENCE = re.compile(r"#\s*check:\s*ignore(-file)?\[([^\]]*)\]([^#]*)")


@dataclass(frozen=True)
class Silence:
    rules: frozenset[str]
    whole_file: bool
    reason: str
    line: int


def silences(source: str) -> list[Silence]:
    """`# check: ignore[L201] reason` (that line) and `# check: ignore-file[L201] reason` (the revision)."""
    found = []
    for number, text in enumerate(source.splitlines(), 1):
        for match in _SILENCE.finditer(text):
            rules = frozenset(r.strip() for r in match.group(2).split(",") if r.strip())
            reason = match.group(3).strip(" :-—\t")
            found.append(Silence(rules, bool(match.group(1)), reason, number))
    return found


def file_problems(path: Path, findings: list[Finding], silenced: set[str] | frozenset[str] = frozenset(),
                  source: str | None = None) -> list[Problem]:
    """The findings of one revision file, less those silenced; silences of L rules without a reason."""
    try:
        marks = silences(path.read_text(encoding="utf-8") if source is None else source)
    except OSError:
        marks = []
    problems: list[Problem] = []
    for finding in findings:
        quiet = finding.rule in silenced or any(
            finding.rule in mark.rules and (mark.whole_file or mark.line == finding.line) for mark in marks)
        if not quiet:
            problems.append(LockProblem(str(finding), path, finding.line, finding.rule, "warning"))
    for mark in marks:
        lock_rules = sorted(r for r in mark.rules if r in RULES)
        if lock_rules and not mark.reason and NO_REASON not in silenced:
            problems.append(LockProblem(
                f"{NO_REASON}: silences {', '.join(lock_rules)} without a reason: say why after the bracket, "
                f"e.g. `# check: ignore[{lock_rules[0]}] small table, 200 rows`", path, mark.line, NO_REASON,
                "warning"))
    return problems


# Recording every revision on three engines is most of what the lint costs: findings are kept per file text
# (.cache/, as inspection.version_files keeps its facts), so a long history is read once, not on every `check`.
LOCKS_CACHE: Path | None = None  # default: <BASE_DIR>/.cache/check-locks.json


BASELINE_SETTING = "LOCK_LINT_AFTER"


def lock_problems(settings: Any = None, engines: tuple[str, ...] = ENGINES, *, every: bool = True) -> list[Problem]:
    """`check --locks` (`every`): every revision file, every engine, one warning per finding. Plain `check`
    (`every=False`): only the revisions after the LOCK_LINT_AFTER baseline (see `deployed_files`)."""
    import hashlib

    from project.core.inspection.version_files import versions_dir

    silenced = set(settings.get("SILENCED_CHECKS", None) or []) if settings is not None else set()
    rules = hashlib.sha256(b"".join(Path(m.__file__ or "").read_bytes() for m in _rule_modules())
                           + ",".join(engines).encode()).digest()
    cache = _cache_path(settings)
    cached = _load_cache(cache)
    seen: dict[str, list[list[Any]]] = {}
    problems: list[Problem] = []
    paths = sorted((p for p in versions_dir(settings).glob("*.py") if not p.name.startswith("_")), key=str)
    if not every:
        skipped, problem = deployed_files(settings)
        paths = [p for p in paths if p not in skipped]
        problems += [problem] if problem else []
    for path in paths:
        data = path.read_bytes()
        key = hashlib.sha256(rules + data).hexdigest()
        if key in cached:
            findings = [Finding(*f) for f in cached[key]]
        else:
            findings = _file_findings(path, engines)
        seen[key] = [[f.rule, f.engine, f.what, f.line] for f in findings]
        if findings or b"check:" in data:  # nothing to report, nothing silenced: most files of a long history
            problems += file_problems(path, findings, silenced, data.decode("utf-8"))
    if seen.keys() - cached.keys():  # other histories' entries kept unless they crowd out this one
        _store_cache(cache, {**cached, **seen} if len(cached) < 4 * len(seen) + 100 else seen)
    return problems


def deployed_files(settings: Any) -> tuple[set[Path], Problem | None]:
    """The version files plain `check` no longer lints: LOCK_LINT_AFTER's revision and every revision it descends
    from (through merges too), deployed long since; what comes after it, or on a branch it does not include, is
    linted. The baseline is a revision id or a unique prefix; one that names no revision is itself a problem
    (linting then covers every file)."""
    from project.core.inspection.version_files import read_version_files, versions_dir

    baseline = settings.get(BASELINE_SETTING) if settings is not None else None
    if not baseline:
        return set(), None
    by_id = {f.revision: f for f in read_version_files(versions_dir(settings)) if f.revision}
    matches = [r for r in by_id if r == baseline] or [r for r in by_id if r.startswith(str(baseline))]
    if len(matches) != 1:
        what = "no revision" if not matches else f"{len(matches)} revisions ({', '.join(sorted(matches)[:3])}...)"
        return set(), Problem(f"{BASELINE_SETTING} = {baseline!r} names {what}: set it to the revision up to which "
                              "the history is deployed everywhere (`manage.py showmigrations` lists them), or "
                              "remove it to lint every revision.")
    skipped: set[Path] = set()
    stack = [matches[0]]
    while stack:
        revision = stack.pop()
        version = by_id.get(revision)
        if version is None or version.path in skipped:
            continue
        skipped.add(version.path)
        stack.extend(version.down_revisions)
    return skipped, None


def _rule_modules() -> list[Any]:
    from project.core.inspection import destructive

    return [sys.modules[__name__], destructive]


def _file_findings(path: Path, engines: tuple[str, ...]) -> list[Finding]:
    """One version file, loaded as Alembic loads it, recorded on each engine."""
    from types import SimpleNamespace

    from alembic.util.pyfiles import load_python_file

    script = SimpleNamespace(module=load_python_file(str(path.parent), path.name), path=str(path))
    findings = [f for engine in engines for f in revision_findings(script, engine)]
    return sorted(findings, key=lambda f: (f.line or 0, f.rule, ENGINES.index(f.engine)))


def _cache_path(settings: Any) -> Path:
    from project.core.conf import cache_dir

    return LOCKS_CACHE or cache_dir(settings) / "check-locks.json"


def _load_cache(path: Path) -> dict[str, list[list[Any]]]:
    import json

    try:
        cached: dict[str, list[list[Any]]] = json.loads(path.read_text())
        return cached
    except (OSError, ValueError):
        return {}


def _store_cache(path: Path, entries: dict[str, list[list[Any]]]) -> None:
    from project.core.conf import write_cache_file

    write_cache_file(path, entries)


def plan_marks(script: Any, engine: str, forwards: bool = True, silenced: set[str] | frozenset[str] = frozenset()
               ) -> list[str]:
    """`migrate --plan`'s LOCKS: lines for one step on the plan's engine, silenced as `check` silences them."""
    findings = revision_findings(script, engine, forwards)
    problems = file_problems(Path(script.path), findings, silenced)
    return [p.message for p in problems if p.rule != NO_REASON]
