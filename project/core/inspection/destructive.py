"""Which migration steps destroy data, answered before anything runs.

Two levels, both built on real parsers rather than regexes over source text:

* Revisions: the revision's upgrade()/downgrade() runs under a *recording* `Operations`, so
  Alembic's own operation objects (DropTableOp, DropColumnOp, AlterColumnOp...) are inspected
  instead of executed. Ops inside `batch_alter_table` blocks are recorded as well. Raw SQL (op.execute
  with text, or DDL a revision sends straight through op.get_bind()) is read with sqlglot.
* Statements: `destructive_sql(statement, dialect)` reads one SQL statement with sqlglot and says what
  it destroys (drops, DELETE, TRUNCATE, SET NOT NULL). `destructive_script(statements, dialect)` does
  the same for a whole script and understands SQLite's batch "move and copy" rebuild (see below).

Descriptions are short phrases for people: "drops column posts.legacy_flag", "drops table posts",
"deletes rows from posts", "narrows users.name from VARCHAR(200) to VARCHAR(50)". Each is a `Finding` that also
knows the object it touches, and a revision's classification keeps, in order, what it creates and renames: so
`judge_plan` can tell, for one plan on one database, which findings destroy what the database held before the
plan (refused under CONFIRM_DESTRUCTIVE) and which lose nothing there (the database was empty, the plan created
the object itself, the object is not in the database, or a constraint is re-created on the same columns).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

# SQLAlchemy dialect names -> sqlglot's.
_SQLGLOT_DIALECTS = {"postgresql": "postgres", "postgres": "postgres", "mysql": "mysql", "mariadb": "mysql",
                     "sqlite": "sqlite"}

# Alembic's batch mode on SQLite copies a table through this temporary name (alembic/operations/batch.py).
_BATCH_TMP_PREFIX = "_alembic_tmp_"


def quiet_library_logs() -> None:
    """sqlglot warns on stderr about SQL it reads as an opaque command; that is our business, not the user's.
    Left as configured when someone (e.g. `-v 2`) set its level."""
    import logging

    logger = logging.getLogger("sqlglot")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.ERROR)


def sqlglot_dialect(dialect: str) -> str:
    return _SQLGLOT_DIALECTS.get(dialect, dialect)


# --- findings and effects ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One thing a step destroys, as a phrase for people (`text`) and as the object it touches.

    kind: "table", "column", "constraint" (constraints and indexes; `family` says which), "rows" (DELETE,
    TRUNCATE), "column-change" (narrowing, NOT NULL), "type" (a PostgreSQL type), "object" (anything else
    dropped: a view, a function...). `table` may be schema-qualified.
    """

    text: str
    kind: str = "object"
    table: str | None = None
    column: str | None = None
    name: str | None = None
    family: str | None = None  # unique, foreignkey, primary, check, index; None: a constraint of unknown kind

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Created:
    """Something a step creates: a table (kind "table", with its columns), a column, a constraint or index
    (kind "constraint": `name`, `family`, `columns`, `referent` for a foreign key), a type, another object."""

    kind: str
    table: str | None = None
    name: str | None = None
    columns: tuple[str, ...] = ()
    family: str | None = None
    referent: str | None = None


@dataclass(frozen=True)
class Renamed:
    """A table (`table` is the old name) or a column of `table` renamed from `old` to `new`."""

    kind: str
    table: str
    old: str
    new: str


class Unreadable(Exception):
    """SQL that sqlglot cannot read, or that runs code it cannot see into (a PL/pgSQL DO block). The message is
    a verb phrase: "runs SQL that cannot be read (TokenError: ...)"."""


# --- statements ---------------------------------------------------------------------------------


def _parse(statement: str, dialect: str) -> list[Any]:
    """The statements of `statement`, [] when sqlglot cannot read it (for the lint, which reports nothing then)."""
    try:
        return _read(statement, dialect)
    except Unreadable:
        return []


def _read(statement: str, dialect: str) -> list[Any]:
    """The statements of `statement` as sqlglot expressions; Unreadable on any error of sqlglot's tokenizer or
    parser (a TokenError is not a ParseError: both are SqlglotError). sqlglot splits the text itself, on its own
    tokens, so a `;` inside a dollar-quoted PL/pgSQL body or a string does not end a statement."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    quiet_library_logs()
    try:
        expressions = [e for e in sqlglot.parse(statement, read=sqlglot_dialect(dialect)) if e is not None]
    except SqlglotError as exc:
        raise Unreadable(f"runs SQL that cannot be read ({type(exc).__name__}: {_first_line(str(exc))})") from None
    for expression in expressions:
        if isinstance(expression, exp.Command) and str(expression.this).upper() == "DO":
            # An anonymous code block runs right away, and what it runs is PL/pgSQL, not SQL sqlglot reads.
            raise Unreadable("runs a DO block, whose PL/pgSQL cannot be inspected "
                             f"({_first_line(expression.sql(dialect=sqlglot_dialect(dialect)))})")
    return expressions


def _first_line(text: str, width: int = 80) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 3] + "..."


def _name(node: Any) -> str:
    """Dotted name of a sqlglot Table/Column/Identifier (schema.table, table.column...)."""
    from sqlglot import exp

    if isinstance(node, exp.Table):
        parts = [p for p in (node.args.get("catalog"), node.args.get("db"), node.this) if p is not None]
        return ".".join(p.name for p in parts)
    if isinstance(node, exp.Column):
        return ".".join(p.name for p in node.parts)
    return str(getattr(node, "name", None) or node.sql())


def destructive_sql(statement: str, dialect: str) -> list[str]:
    """What one SQL statement destroys, e.g. ["drops column posts.legacy_flag"]; [] when harmless.

    Reports DROP TABLE/INDEX/TYPE/..., ALTER TABLE ... DROP COLUMN/CONSTRAINT/INDEX/FOREIGN KEY/PRIMARY
    KEY, DELETE, TRUNCATE and SET NOT NULL. A column type change is not reported here: whether it
    narrows depends on the previous type, which one statement does not carry (the revision-level
    classification, `classify_revision`, knows it from Alembic's `existing_type`). Unreadable text
    yields [] here (a revision that runs it is "cannot be inspected": see assess_revision). SQLite's batch
    rebuild (DROP TABLE x + ALTER TABLE _alembic_tmp_x RENAME TO x) is reported as "drops table x" by this
    function; `destructive_script` recognises the pattern.
    """
    findings: list[str] = []
    for expression in _parse(statement, dialect):
        findings.extend(f.text for f in _expression_effects(expression) if isinstance(f, Finding))
    return findings


def _destructive_expression(expression: Any) -> list[str]:
    return [f.text for f in _expression_effects(expression) if isinstance(f, Finding)]


def _expression_effects(expression: Any) -> list[Finding | Created | Renamed]:
    """What one parsed statement destroys, creates and renames, in order."""
    from sqlglot import exp

    if isinstance(expression, exp.Drop):
        kind = (expression.args.get("kind") or "object").lower()
        names = [_name(t) for t in expression.args.get("tables") or []] or [_name(expression.this)]
        on = expression.args.get("cluster")  # MySQL: DROP INDEX ix ON table
        table = _name(on.this) if isinstance(on, exp.OnProperty) else None
        suffix = f" on {table}" if table else ""
        effects: list[Finding | Created | Renamed] = []
        for n in names:
            text = f"drops {kind} {n}{suffix}"
            if kind == "table":
                effects.append(Finding(text, "table", table=n))
            elif kind == "index":
                effects.append(Finding(text, "constraint", table=table, name=n, family="index"))
            elif kind == "type":
                effects.append(Finding(text, "type", name=n))
            else:
                effects.append(Finding(text, "object", name=n))
        return effects
    if isinstance(expression, exp.TruncateTable):
        return [Finding(f"deletes all rows from {_name(t)}", "rows", table=_name(t)) for t in expression.expressions]
    if isinstance(expression, exp.Delete):
        where = "" if expression.args.get("where") is not None else "all "
        table = _name(expression.this)
        return [Finding(f"deletes {where}rows from {table}", "rows", table=table)]
    if isinstance(expression, exp.Alter):
        return _alter_effects(expression)
    if isinstance(expression, exp.Create):
        return _create_effects(expression)
    return []


def _create_effects(expression: Any) -> list[Finding | Created | Renamed]:
    from sqlglot import exp

    kind = (expression.args.get("kind") or "").upper()
    target = expression.this
    if kind == "TABLE":
        schema = target if isinstance(target, exp.Schema) else None
        table = _name(schema.this if schema is not None else target)
        columns = tuple(c.name for c in schema.expressions if isinstance(c, exp.ColumnDef)) if schema else ()
        return [Created("table", table, columns=columns)]
    if kind == "INDEX" and isinstance(target, exp.Index):
        on = target.args.get("table")
        params = target.args.get("params")
        columns = tuple(_name(o.this) for o in (params.args.get("columns") or [])) if params is not None else ()
        family = "unique" if expression.args.get("unique") else "index"
        return [Created("constraint", _name(on) if on is not None else None, target.name, columns, family)]
    if kind:
        return [Created(kind.lower(), name=_name(target.this if isinstance(target, exp.Schema) else target))]
    return []


def _alter_effects(expression: Any) -> list[Finding | Created | Renamed]:
    from sqlglot import exp

    table = _name(expression.this)
    effects: list[Finding | Created | Renamed] = []
    for action in expression.args.get("actions") or []:
        if isinstance(action, exp.Drop):
            kind = (action.args.get("kind") or "column").lower()
            for target in action.args.get("tables") or []:
                if kind == "column":
                    effects.append(Finding(f"drops column {table}.{_name(target)}", "column", table, _name(target)))
                else:
                    family = {"index": "index", "foreign key": "foreignkey"}.get(kind)
                    effects.append(Finding(f"drops {kind} {_name(target)} on {table}", "constraint", table,
                                           name=_name(target), family=family))
        elif isinstance(action, exp.DropPrimaryKey):
            effects.append(Finding(f"drops primary key on {table}", "constraint", table, family="primary"))
        elif isinstance(action, exp.AlterColumn) and action.args.get("allow_null") is False:
            effects.append(Finding(f"makes {table}.{_name(action.this)} NOT NULL", "column-change", table,
                                   _name(action.this)))
        elif isinstance(action, exp.ColumnDef):
            effects.append(Created("column", table, action.name))
        elif isinstance(action, exp.AlterRename):
            effects.append(Renamed("table", table, table, _name(action.this)))
        elif isinstance(action, exp.RenameColumn):
            effects.append(Renamed("column", table, _name(action.this), _name(action.args.get("to"))))
        elif isinstance(action, exp.AddConstraint):
            effects.extend(_added_constraints(action, table))
    return effects


def _added_constraints(action: Any, table: str) -> list[Finding | Created | Renamed]:
    from sqlglot import exp

    created: list[Finding | Created | Renamed] = []
    for constraint in action.expressions:
        name = constraint.name if isinstance(constraint, exp.Constraint) else None
        for part in getattr(constraint, "expressions", None) or [constraint]:
            if isinstance(part, exp.ForeignKey):
                reference = part.args.get("reference")
                referent = _name(reference.this.this) if reference is not None and isinstance(
                    reference.this, exp.Schema) else None
                created.append(Created("constraint", table, name, tuple(_name(c) for c in part.expressions),
                                       "foreignkey", referent))
            elif isinstance(part, exp.UniqueColumnConstraint):
                schema = part.this
                columns = tuple(_name(c) for c in schema.expressions) if isinstance(schema, exp.Schema) else ()
                created.append(Created("constraint", table, name, columns, "unique"))
            elif isinstance(part, exp.PrimaryKey):
                created.append(Created("constraint", table, name, tuple(_name(c) for c in part.expressions),
                                       "primary"))
            elif name:
                created.append(Created("constraint", table, name, family="check"))
    return created


def destructive_script(
    statements: Sequence[str], dialect: str, tables: Mapping[str, Sequence[str]] | None = None,
    not_null: Callable[[int], Collection[str]] | None = None,
) -> list[list[str]]:
    """`destructive_sql` for each statement of a script, aware of SQLite's batch rebuild.

    Alembic rebuilds a SQLite table as: CREATE TABLE _alembic_tmp_x (...); INSERT INTO _alembic_tmp_x
    (...) SELECT ... FROM x; DROP TABLE x; ALTER TABLE _alembic_tmp_x RENAME TO x. That DROP TABLE is not
    a loss by itself: what is lost is the columns of x the INSERT...SELECT does not copy. Those are
    reported on the DROP TABLE statement ("drops column x.c"); the RENAME is harmless.

    The columns x had before are taken from `tables` ({table: [columns]}, e.g. reflected from a
    database) and from CREATE TABLE / ADD COLUMN / DROP COLUMN statements earlier in the same script.
    When x's prior columns are unknown, the rebuild is reported as "rebuilds table x (columns it does
    not copy are lost)" so that nothing is silently passed over.

    Making a column NOT NULL is reported on every engine as the statement that does it: PostgreSQL's SET NOT
    NULL; MySQL's MODIFY/CHANGE, which restates the whole column, when the column allowed NULL before; SQLite's
    rebuild that copies a column that allowed NULL into a NOT NULL one (on the DROP TABLE, with the rest of the
    rebuild). Whether a column allowed NULL before is known from this script's own CREATE TABLE / ADD COLUMN /
    MODIFY, else from `not_null(i)`: the "table.column" names (folded) that the revision of statement i makes
    NOT NULL, as its Alembic operations say (nullable=False on a column that allowed NULL).
    Returns one list per statement, in order.
    """
    script = _Script({k: list(v) for k, v in (tables or {}).items()})
    results: list[list[str]] = []
    for index, statement in enumerate(statements):
        findings: list[str] = []
        hints = functools.partial(not_null, index) if not_null is not None else tuple
        for expression in _parse(statement, dialect):
            findings.extend(script.step(expression, hints))
        results.append(findings)
    return results


class _Script:
    """What destructive_script knows while reading a script: each table's columns, whether they allow NULL,
    and the batch rebuild in progress (which columns its INSERT...SELECT copies, and from where)."""

    def __init__(self, known: dict[str, list[str]]):
        self.known = known
        self.nullable: dict[str, dict[str, bool]] = {}  # table -> folded column -> allows NULL
        self.copied: dict[str, dict[str, str]] = {}  # table -> {tmp column: source column} of its rebuild

    def step(self, expression: Any, hints: Callable[[], Collection[str]]) -> list[str]:
        from sqlglot import exp

        if isinstance(expression, exp.Create) and (expression.args.get("kind") or "").upper() == "TABLE":
            schema = expression.this
            if isinstance(schema, exp.Schema):
                name = _name(schema.this)
                self.known[name] = [c.name for c in schema.expressions if isinstance(c, exp.ColumnDef)]
                self.nullable[name] = _nullability(schema)
            return []
        if isinstance(expression, exp.Insert):
            self._copy(expression)
            return []
        if isinstance(expression, exp.Drop) and (expression.args.get("kind") or "").upper() == "TABLE":
            findings = []
            for table in expression.args.get("tables") or []:
                name = _name(table)
                if name in self.copied:
                    mapping = self.copied.pop(name)
                    findings.extend(_lost_in_rebuild(name, self.known.get(name), set(mapping.values())))
                    findings.extend(self._rebuilt_not_null(name, mapping, hints))
                else:
                    findings.append(f"drops table {name}")
                self.known.pop(name, None)
            return findings
        findings = []
        if isinstance(expression, exp.Alter):
            findings = self._modified(expression, hints)
            self._track_alter(expression)
        return findings + _destructive_expression(expression)

    def _copy(self, expression: Any) -> None:
        from sqlglot import exp

        target = expression.this.this if isinstance(expression.this, exp.Schema) else expression.this
        name = _name(target)
        select = expression.expression
        if not name.startswith(_BATCH_TMP_PREFIX) or not isinstance(select, exp.Select):
            return
        into = [_name(c) for c in expression.this.expressions] if isinstance(expression.this, exp.Schema) else []
        sources = [e.name if isinstance(e, exp.Column) else None for e in select.expressions]
        mapping = {t: s for t, s in zip(into, sources, strict=False) if s}
        # Columns the SELECT reads in other ways (an expression) count as copied, mapped to themselves.
        mapping.update({c.name: c.name for c in select.find_all(exp.Column) if c.name not in mapping.values()})
        self.copied[name[len(_BATCH_TMP_PREFIX):]] = mapping

    def _rebuilt_not_null(self, table: str, mapping: dict[str, str], hints: Callable[[], Collection[str]]
                          ) -> list[str]:
        after = self.nullable.get(_BATCH_TMP_PREFIX + table, {})
        before = self.nullable.get(table, {})
        findings = []
        for column, allows_null in after.items():
            source = next((s for t, s in mapping.items() if _fold(t) == column), None)
            if allows_null or source is None:
                continue
            if before.get(_fold(source)) or (_fold(source) not in before and
                                             {f"{_fold(table)}.{_fold(source)}", f"{_fold(table)}.{column}"} &
                                             set(hints())):
                findings.append(f"makes {table}.{source} NOT NULL")
        return findings

    def _modified(self, expression: Any, hints: Callable[[], Collection[str]]) -> list[str]:
        """MySQL's MODIFY/CHANGE restates a column: it makes it NOT NULL only if it allowed NULL before."""
        from sqlglot import exp

        table = _name(expression.this)
        findings = []
        for action in expression.args.get("actions") or []:
            if not isinstance(action, exp.ModifyColumn) or not isinstance(action.this, exp.ColumnDef):
                continue
            column = action.this.name
            renamed = action.args.get("rename_from")
            old = renamed.name if renamed is not None else column
            columns = self.nullable.setdefault(table, {})
            before = columns.pop(_fold(old), None)
            not_null = not _allows_null(action.this)
            columns[_fold(column)] = not not_null
            if not_null and (before or (before is None and {f"{_fold(table)}.{_fold(old)}",
                                                            f"{_fold(table)}.{_fold(column)}"} & set(hints()))):
                findings.append(f"makes {table}.{old} NOT NULL")
        return findings

    def _track_alter(self, expression: Any) -> None:
        from sqlglot import exp

        table = _name(expression.this)
        known = self.known
        for action in expression.args.get("actions") or []:
            if isinstance(action, exp.AlterRename):
                known[_name(action.this)] = known.pop(table, [])
                if table in self.nullable:
                    self.nullable[_name(action.this)] = self.nullable.pop(table)
            elif isinstance(action, exp.ColumnDef):
                if table in known:
                    known[table].append(action.name)
                self.nullable.setdefault(table, {})[_fold(action.name)] = _allows_null(action)
            elif isinstance(action, exp.AlterColumn) and action.args.get("allow_null") is not None:
                self.nullable.setdefault(table, {})[_fold(_name(action.this))] = bool(action.args["allow_null"])
            elif isinstance(action, exp.Drop) and (action.args.get("kind") or "").upper() == "COLUMN" \
                    and table in known:
                dropped = {_name(t) for t in action.args.get("tables") or []}
                known[table] = [c for c in known[table] if c not in dropped]


def _allows_null(column: Any) -> bool:
    """A column definition without NOT NULL (or PRIMARY KEY) allows NULL."""
    from sqlglot import exp

    for constraint in column.args.get("constraints") or []:
        kind = constraint.args.get("kind")
        if isinstance(kind, exp.NotNullColumnConstraint) and not kind.args.get("allow_null"):
            return False
        if isinstance(kind, exp.PrimaryKeyColumnConstraint):
            return False
    return True


def _nullability(schema: Any) -> dict[str, bool]:
    """{folded column: allows NULL} of a CREATE TABLE's columns (a table-level PRIMARY KEY makes them NOT NULL)."""
    from sqlglot import exp

    columns = {_fold(c.name): _allows_null(c) for c in schema.expressions if isinstance(c, exp.ColumnDef)}
    for key in schema.find_all(exp.PrimaryKey):
        for part in key.expressions:
            columns[_fold(_name(part.this if isinstance(part, exp.Ordered) else part))] = False
    return columns


def _lost_in_rebuild(table: str, before: list[str] | None, copied: set[str]) -> list[str]:
    if before is None:
        return [f"rebuilds table {table} (columns it does not copy are lost)"]
    return [f"drops column {table}.{column}" for column in before if column not in copied]


def not_null_changes(script: Any, forwards: bool = True, dialect: str = "postgresql") -> set[str]:
    """The folded "table.column" names a revision makes NOT NULL (nullable=False on a column that allowed NULL,
    as its Alembic operations say): destructive_script's `not_null` hints for offline SQL."""
    findings = assess_revision(script, forwards, dialect).findings
    return {f"{_fold(_split(f.table)[1])}.{_fold(f.column)}" for f in findings
            if f.kind == "column-change" and f.table and f.column and f.text.startswith("makes ")}


# --- revisions ------------------------------------------------------------------------------------


@dataclass
class Recorded:
    """What a revision would do in one direction: Alembic operations, plus SQL sent through the bind."""

    operations: list[Any] = field(default_factory=list)
    direct_sql: list[str] = field(default_factory=list)
    # Set when the revision could not run offline (it reads data through op.get_bind(), say).
    error: str | None = None


@contextmanager
def _recording(context: Any, recorded: list[Any]) -> Iterator[Any]:
    """Alembic's `op` proxy, installed as usual, but every operation is recorded instead of run.

    `Operations.context` installs a plain Operations; its `invoke` (and batch_alter_table, so that ops in
    batch blocks are recorded too) are replaced on that instance only.
    """
    from alembic.operations import BatchOperations, Operations
    from alembic.operations.batch import BatchOperationsImpl

    def record(operation: Any) -> None:
        recorded.append(operation)

    with Operations.context(context) as operations:

        @contextmanager
        def batch_alter_table(table_name: str, schema: str | None = None, recreate: str = "auto",
                              partial_reordering: Any = None, copy_from: Any = None, table_args: Any = (),
                              table_kwargs: Any = None, reflect_args: Any = (), reflect_kwargs: Any = None,
                              naming_convention: Any = None) -> Iterator[Any]:
            # The batch ops read impl.table_name/schema to build themselves; nothing is ever flushed.
            # BatchOperationsImpl is private: its signature is pinned by tests/test_errors_model.py.
            impl = BatchOperationsImpl(  # type: ignore[no-untyped-call]
                operations, table_name, schema, recreate, copy_from, table_args,
                table_kwargs or {}, reflect_args, reflect_kwargs or {}, naming_convention or {}, partial_reordering)
            batch = BatchOperations(context, impl=impl)

            def record_in_batch(operation: Any) -> None:
                # Which batch block an op came from, and its recreate mode: SQLite rebuilds the table for
                # it (inspection.lock_rules reads this). MigrateOperation.info is Alembic's own scratch dict.
                operation.info["batch"] = (id(impl), recreate)
                record(operation)

            batch.invoke = record_in_batch  # type: ignore[method-assign, assignment]
            yield batch

        operations.invoke = record  # type: ignore[method-assign, assignment]
        operations.batch_alter_table = batch_alter_table  # type: ignore[method-assign]
        yield operations


class _BindOutput(io.StringIO):
    """The offline context's output buffer: each write is one statement a revision ran through op.get_bind()
    (Alembic's impl writes a statement and its terminator at once). It is kept in order with the operations,
    as an ExecuteSQLOp marked `info["bind"]`, so what the revision created before it is known when it is read."""

    def __init__(self, recorded: list[Any]):
        super().__init__()
        self.recorded = recorded

    def write(self, text: str) -> int:
        from alembic.operations import ops

        if text.strip():
            operation = ops.ExecuteSQLOp(text.strip())
            operation.info["bind"] = True
            self.recorded.append(operation)
        return len(text)


def record_revision(script: Any, forwards: bool = True, dialect: str = "postgresql") -> Recorded:
    """Run a revision's upgrade() (or downgrade()) without a database, recording its operations.

    The MigrationContext is offline (as_sql) for `dialect`, so `op.get_bind()` works and DDL the
    revision runs through the bind directly (e.g. an Enum's DROP TYPE) is recorded too, in order.
    """
    from alembic.runtime.migration import MigrationContext

    recorded: list[Any] = []
    context = MigrationContext.configure(
        dialect_name=dialect, opts={"as_sql": True, "output_buffer": _BindOutput(recorded), "literal_binds": True}
    )
    error = None
    with _recording(context, recorded):
        # Caught inside the block so that Operations.context always removes its proxy again.
        try:
            (script.module.upgrade if forwards else script.module.downgrade)()
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
    from alembic.operations import ops

    direct = [str(o.sqltext) for o in recorded if isinstance(o, ops.ExecuteSQLOp) and o.info.get("bind")]
    return Recorded(recorded, direct, error)


@dataclass
class Verdict:
    """Three answers kept apart: what a step destroys (named), why it could not be inspected offline (it is
    not counted as destructive, but the policy asks about it with its own message), and whether it has no
    downgrade at all (unapplying it cannot work). `effects`: what it destroys, creates and renames, in order
    (judge_plan reads them)."""

    destroys: list[str] = field(default_factory=list)
    uninspectable: str | None = None
    no_downgrade: bool = False
    effects: list[Finding | Created | Renamed] = field(default_factory=list, repr=False)

    @property
    def findings(self) -> list[Finding]:
        return list(dict.fromkeys(e for e in self.effects if isinstance(e, Finding)))


def assess_revision(script: Any, forwards: bool = True, dialect: str = "postgresql") -> Verdict:
    """What applying (forwards) or unapplying a revision does to data, as far as can be told offline.

    SQL that cannot be read (sqlglot's tokenizer or parser fails, or a PL/pgSQL DO block) makes the revision
    "cannot be inspected", named by the caller; it never raises."""
    recorded = record_revision(script, forwards, dialect)
    effects: list[Finding | Created | Renamed] = []
    unreadable: list[str] = []
    for operation in recorded.operations:
        try:
            effects.extend(operation_effects(operation, dialect))
        except Unreadable as exc:
            unreadable.append(str(exc))
    verdict = Verdict(_unique(e.text for e in effects if isinstance(e, Finding)), effects=effects)
    name = "upgrade()" if forwards else "downgrade()"
    if recorded.error and not forwards and recorded.error.startswith("NotImplementedError"):
        verdict.no_downgrade = True
    elif recorded.error:
        verdict.uninspectable = f"its {name} cannot run without a database ({recorded.error})"
    elif unreadable:
        verdict.uninspectable = f"its {name} {unreadable[0]}"
    return verdict


def classify_revision(script: Any, forwards: bool = True, dialect: str = "postgresql") -> list[str]:
    """What applying (forwards) or unapplying a revision destroys; [] when nothing (or when it cannot tell:
    see assess_revision)."""
    return assess_revision(script, forwards, dialect).destroys


def classify_operation(operation: Any, dialect: str = "postgresql") -> list[str]:
    """What one Alembic MigrateOperation destroys ([] for SQL that cannot be read: see assess_revision)."""
    try:
        return [e.text for e in operation_effects(operation, dialect) if isinstance(e, Finding)]
    except Unreadable:
        return []


_CONSTRAINT_FAMILIES = {"foreignkey": "foreign key", "unique": "unique constraint", "primary": "primary key",
                        "check": "check constraint"}


def operation_effects(operation: Any, dialect: str = "postgresql") -> list[Finding | Created | Renamed]:
    """What one Alembic MigrateOperation destroys, creates and renames, in order. Raises Unreadable for SQL
    sqlglot cannot read."""
    from alembic.operations import ops

    if isinstance(operation, ops.DropTableOp):
        table = _qualified(operation.schema, operation.table_name)
        return [Finding(f"drops table {table}", "table", table)]
    if isinstance(operation, ops.DropColumnOp):
        table = _qualified(operation.schema, operation.table_name)
        return [Finding(f"drops column {table}.{operation.column_name}", "column", table, operation.column_name)]
    if isinstance(operation, ops.DropConstraintOp):
        kind = _CONSTRAINT_FAMILIES.get(operation.constraint_type or "", "constraint")
        return [Finding(f"drops {kind} {operation.constraint_name} on {operation.table_name}", "constraint",
                        _qualified(operation.schema, operation.table_name), name=_named(operation.constraint_name),
                        family=operation.constraint_type or None)]
    if isinstance(operation, ops.DropIndexOp):
        on = _qualified(operation.schema, operation.table_name) if operation.table_name else None
        return [Finding(f"drops index {operation.index_name} on {operation.table_name}", "constraint", on,
                        name=_named(operation.index_name), family="index")]
    if isinstance(operation, ops.AlterColumnOp):
        altered = _qualified(operation.schema, operation.table_name)
        effects: list[Finding | Created | Renamed] = [
            Finding(text, "column-change", altered, operation.column_name)
            for text in _classify_alter_column(operation)]
        if operation.modify_name is not None:
            effects.append(Renamed("column", altered, operation.column_name, operation.modify_name))
        return effects
    if isinstance(operation, ops.ExecuteSQLOp):
        return _execute_effects(operation.sqltext, dialect)
    if isinstance(operation, ops.OpContainer):
        return [e for child in operation.ops for e in operation_effects(child, dialect)]
    return _created(operation)


def _created(operation: Any) -> list[Finding | Created | Renamed]:
    """What a creating (or renaming) operation leaves in the database."""
    import sqlalchemy as sa
    from alembic.operations import ops

    def names(columns: Any) -> tuple[str, ...]:
        return tuple(c if isinstance(c, str) else str(getattr(c, "name", None) or c) for c in columns or ())

    if isinstance(operation, ops.CreateTableOp):
        table = _qualified(operation.schema, operation.table_name)
        columns = [c for c in operation.columns if isinstance(c, sa.Column)]
        created: list[Finding | Created | Renamed] = [Created("table", table, columns=tuple(c.name for c in columns))]
        # A native enum's type is created with the table (PostgreSQL's CREATE TYPE).
        created += [Created("type", name=c.type.name) for c in columns
                    if isinstance(c.type, sa.Enum) and c.type.native_enum and c.type.name]
        return created
    if isinstance(operation, ops.AddColumnOp):
        return [Created("column", _qualified(operation.schema, operation.table_name), operation.column.name)]
    if isinstance(operation, ops.RenameTableOp):
        table = _qualified(operation.schema, operation.table_name)
        return [Renamed("table", table, table, _qualified(operation.schema, operation.new_table_name))]
    if isinstance(operation, ops.CreateIndexOp):
        return [Created("constraint", _qualified(operation.schema, operation.table_name),
                        _named(operation.index_name), names(operation.columns),
                        "unique" if operation.unique else "index")]
    if isinstance(operation, ops.CreateUniqueConstraintOp):
        return [Created("constraint", _qualified(operation.schema, operation.table_name),
                        _named(operation.constraint_name), names(operation.columns), "unique")]
    if isinstance(operation, ops.CreatePrimaryKeyOp):
        return [Created("constraint", _qualified(operation.schema, operation.table_name),
                        _named(operation.constraint_name), names(operation.columns), "primary")]
    if isinstance(operation, ops.CreateForeignKeyOp):
        return [Created("constraint", _qualified(operation.kw.get("source_schema"), operation.source_table),
                        _named(operation.constraint_name), names(operation.local_cols), "foreignkey",
                        _qualified(operation.kw.get("referent_schema"), operation.referent_table))]
    if isinstance(operation, ops.CreateCheckConstraintOp):
        return [Created("constraint", _qualified(operation.schema, operation.table_name),
                        _named(operation.constraint_name), family="check")]
    return []


def _named(name: Any) -> str | None:
    """A constraint's name as a string; None for an unnamed one (SQLAlchemy's _NoneName included)."""
    return name if isinstance(name, str) and name else None


def _qualified(schema: str | None, name: str) -> str:
    return f"{schema}.{name}" if schema else name


def _classify_alter_column(operation: Any) -> list[str]:
    column = f"{operation.table_name}.{operation.column_name}"
    findings = []
    new_type = operation.modify_type
    if new_type is not None:
        narrowing = type_narrows(operation.existing_type, new_type)
        if narrowing:
            findings.append(f"{narrowing} {column}" + _type_change_text(operation.existing_type, new_type))
    if operation.modify_nullable is False and operation.existing_nullable is not False:
        findings.append(f"makes {column} NOT NULL")
    return findings


def _type_change_text(old: Any, new: Any) -> str:
    return f" from {_type_sql(old)} to {_type_sql(new)}" if old is not None else f" to {_type_sql(new)}"


def _type_sql(type_: Any) -> str:
    try:
        return str(type_.compile())
    except Exception:
        return repr(type_)


def type_narrows(old: Any, new: Any) -> str | None:
    """A verb phrase when changing a column from `old` to `new` can lose data, else None.

    Narrowing: shorter strings, Text -> String, smaller integers, fewer digits, or a change of type
    family (string -> integer...). Without the previous type (no existing_type) we cannot tell, and
    say so: safety errs on the side of asking.
    """
    import sqlalchemy as sa

    if old is None:
        return "changes the type (no existing_type given, may narrow) of"
    old, new = _as_type(old), _as_type(new)
    if isinstance(old, sa.String) and isinstance(new, sa.String):
        old_len = None if isinstance(old, sa.Text) and not old.length else old.length
        new_len = None if isinstance(new, sa.Text) and not new.length else new.length
        if new_len is not None and (old_len is None or new_len < old_len):
            return "narrows"
        return None
    if isinstance(old, sa.Integer) and isinstance(new, sa.Integer):
        return "narrows" if _int_rank(new) < _int_rank(old) else None
    if isinstance(old, sa.Numeric) and isinstance(new, sa.Numeric):
        if isinstance(old, sa.Float) != isinstance(new, sa.Float):
            return "changes the type of"
        for a, b in ((old.precision, new.precision), (old.scale, new.scale)):
            if b is not None and (a is None or b < a):
                return "narrows"
        return None
    if isinstance(old, sa.Integer) and isinstance(new, sa.Numeric):
        return None
    if old._type_affinity is new._type_affinity:  # SQLAlchemy's own type-family marker
        return None
    return "changes the type of"


def _as_type(type_: Any) -> Any:
    return type_() if isinstance(type_, type) else type_


def _int_rank(type_: Any) -> int:
    import sqlalchemy as sa

    if isinstance(type_, sa.SmallInteger):
        return 1
    if isinstance(type_, sa.BigInteger):
        return 3
    return 2


def _execute_effects(sqltext: Any, dialect: str) -> list[Finding | Created | Renamed]:
    """op.execute's argument (or SQL sent through the bind): a string, a text() clause, a delete() construct,
    or another construct compiled for the dialect and read as SQL. Raises Unreadable."""
    import sqlalchemy as sa
    from sqlalchemy.sql.dml import Delete

    if isinstance(sqltext, sa.TextClause):
        sqltext = sqltext.text
    if isinstance(sqltext, Delete):
        where = "" if sqltext.whereclause is not None else "all "
        table = sqltext.table.description
        return [Finding(f"deletes {where}rows from {table}", "rows", table)]
    if not isinstance(sqltext, str):
        # Other constructs (update(), insert(), DDL elements): render them and read the SQL.
        try:
            from sqlalchemy.dialects import registry

            compiled = sqltext.compile(dialect=registry.load(dialect)(), compile_kwargs={"literal_binds": True})
        except Exception:
            return []
        sqltext = str(compiled)
    return [e for expression in _read(sqltext, dialect) for e in _expression_effects(expression)]


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def summary(findings: Sequence[str]) -> str:
    """One phrase: 'drops table posts; drops table users' -> 'drops tables posts, users'."""
    groups: dict[str, list[str]] = {}
    plain: list[str] = []
    for finding in findings:
        parts = finding.split(" ")
        if len(parts) == 3 and parts[0] == "drops" and parts[1] in {"table", "column"}:
            groups.setdefault(parts[1], []).append(parts[2])
        else:
            plain.append(finding)
    phrases = [f"drops {kind}{'s' if len(names) > 1 else ''} {', '.join(names)}" for kind, names in groups.items()]
    return "; ".join(phrases + plain)


# --- a plan, on this database ------------------------------------------------------------------------


class Database:
    """What the database held before the plan, reflected lazily: each question costs at most one inspector
    call per table (and one for the table names), only when a finding cannot be settled from the plan itself.
    Any error reflecting counts as "exists" (the policy then refuses, as it would have without looking)."""

    def __init__(self, connection: Any):
        self.connection = connection
        self._inspector: Any = None
        self._tables: dict[str | None, set[str] | None] = {}
        self._columns: dict[str, set[str] | None] = {}
        self._constraints: dict[str, dict[str, tuple[str, tuple[str, ...], str | None]] | None] = {}
        self._empty: bool | None = None
        self._types: set[str] | None = None

    def _inspect(self) -> Any:
        import sqlalchemy as sa

        if self._inspector is None:
            self._inspector = sa.inspect(self.connection)
        return self._inspector

    def done(self) -> None:
        """End the transaction reflection opened (the migration connection is handed on without one)."""
        if self._inspector is not None and self.connection.in_transaction():
            self.connection.rollback()

    def tables(self, schema: str | None = None) -> set[str] | None:
        """Folded table names of `schema` (None: the default), without the tool's own; None if unknown."""
        from project.core.bookkeeping import bookkeeping_tables

        if schema not in self._tables:
            try:
                names = set(self._inspect().get_table_names(schema=schema)) - bookkeeping_tables()
                self._tables[schema] = {_fold(n) for n in names}
            except Exception:
                self._tables[schema] = None
        return self._tables[schema]

    def empty(self) -> bool:
        """No application table in any schema the database's users work in (PostgreSQL: every schema but the
        system ones; elsewhere the connection's database)."""
        if self._empty is None:
            schemas: list[str | None] = [None]
            if self.connection.dialect.name == "postgresql":
                try:
                    schemas += [s for s in self._inspect().get_schema_names()
                                if s != "information_schema" and not s.startswith("pg_")]
                except Exception:
                    self._empty = False
                    return False
            found = [self.tables(s) for s in schemas]
            self._empty = all(t is not None and not t for t in found)
        return self._empty

    def has_table(self, table: str) -> bool:
        schema, name = _split(table)
        names = self.tables(schema)
        return names is None or _fold(name) in names

    def columns(self, table: str) -> set[str] | None:
        key = _fold(table)
        if key not in self._columns:
            schema, name = _split(table)
            try:
                self._columns[key] = {_fold(c["name"]) for c in self._inspect().get_columns(name, schema=schema)}
            except Exception:
                self._columns[key] = None
        return self._columns[key]

    def has_column(self, table: str, column: str) -> bool:
        columns = self.columns(table)
        return columns is None or _fold(column) in columns

    def constraint(self, table: str, name: str) -> tuple[str, tuple[str, ...], str | None] | None:
        """(family, folded columns, folded referred table) of the constraint or index `name` on `table`."""
        key = _fold(table)
        if key not in self._constraints:
            self._constraints[key] = self._reflect_constraints(table)
        found = self._constraints[key]
        return None if found is None else found.get(_fold(name))

    def _reflect_constraints(self, table: str) -> dict[str, tuple[str, tuple[str, ...], str | None]] | None:
        schema, name = _split(table)
        inspector = self._inspect()
        found: dict[str, tuple[str, tuple[str, ...], str | None]] = {}

        def cols(names: Any) -> tuple[str, ...]:
            return tuple(_fold(c) for c in names or () if c is not None)

        try:
            pk = inspector.get_pk_constraint(name, schema=schema)
            if pk.get("name"):
                found[_fold(pk["name"])] = ("primary", cols(pk.get("constrained_columns")), None)
            for fk in inspector.get_foreign_keys(name, schema=schema):
                if fk.get("name"):
                    found[_fold(fk["name"])] = ("foreignkey", cols(fk["constrained_columns"]),
                                                _fold(fk["referred_table"]))
            for index in inspector.get_indexes(name, schema=schema):
                if index.get("name"):
                    found[_fold(index["name"])] = ("unique" if index.get("unique") else "index",
                                                   cols(index.get("column_names")), None)
            for unique in inspector.get_unique_constraints(name, schema=schema):
                if unique.get("name"):
                    found[_fold(unique["name"])] = ("unique", cols(unique["column_names"]), None)
            for check in inspector.get_check_constraints(name, schema=schema):
                if check.get("name"):
                    found[_fold(check["name"])] = ("check", (), None)
        except Exception:
            return None
        return found

    def has_type(self, name: str) -> bool:
        if self.connection.dialect.name != "postgresql":
            return True
        if self._types is None:
            try:
                self._types = {_fold(e["name"]) for e in self._inspect().get_enums(schema="*")}
            except Exception:
                return True
        return _fold(name) in self._types


def _fold(name: str) -> str:
    return name.casefold()


def _split(table: str) -> tuple[str | None, str]:
    schema, _, name = table.rpartition(".")
    return schema or None, name


@dataclass
class Judged:
    """One step of a plan, judged on one database: what it destroys there (refused under CONFIRM_DESTRUCTIVE),
    what it drops that loses nothing there and why, and whether it could not be inspected (None also when the
    database was empty: nothing in it can be lost)."""

    step: Any
    verdict: Verdict
    destroys: list[Finding] = field(default_factory=list)
    spared: list[tuple[Finding, str]] = field(default_factory=list)
    uninspectable: str | None = None


@dataclass
class _Made:
    """Where the plan made something: the revision, and the position of the effect in the plan."""

    revision: str
    at: tuple[int, int]


class _PlanState:
    """What the plan has done so far to the names it touches: created (by which revision), renamed (from which
    name the database holds), dropped."""

    def __init__(self) -> None:
        self.tables: dict[str, _Made] = {}  # folded current name -> creation
        self.columns: dict[tuple[str, str], _Made] = {}
        self.constraints: dict[tuple[str | None, str], _Made] = {}
        self.types: dict[str, _Made] = {}
        self.objects: dict[str, _Made] = {}
        self.table_origin: dict[str, str] = {}  # folded current name -> the name in the database
        self.column_origin: dict[tuple[str, str], str] = {}
        self.gone_tables: set[str] = set()
        self.gone_columns: set[tuple[str, str]] = set()

    def origin(self, table: str) -> str:
        return self.table_origin.get(_fold(table), table)

    def column_origin_of(self, table: str, column: str) -> str:
        return self.column_origin.get((_fold(table), _fold(column)), column)

    def made_table(self, table: str | None) -> _Made | None:
        return self.tables.get(_fold(table)) if table else None

    def apply(self, effect: Created | Renamed, made: _Made) -> None:
        if isinstance(effect, Created):
            table = _fold(effect.table) if effect.table else None
            if effect.kind == "table" and table:
                self.tables[table] = made
                self.gone_tables.discard(table)
            elif effect.kind == "column" and table and effect.name:
                self.columns[(table, _fold(effect.name))] = made
                self.gone_columns.discard((table, _fold(effect.name)))
            elif effect.kind == "constraint" and effect.name:
                self.constraints[(table, _fold(effect.name))] = made
                self.constraints[(None, _fold(effect.name))] = made
            elif effect.kind == "type" and effect.name:
                self.types[_fold(effect.name)] = made
            elif effect.name:
                self.objects[_fold(effect.name)] = made
            return
        old, new = _fold(effect.table), _fold(effect.new if effect.kind == "table" else effect.table)
        if effect.kind == "table":
            if old in self.tables:
                self.tables[new] = self.tables.pop(old)
            else:
                self.table_origin[new] = self.table_origin.pop(old, effect.table)
            for key in [k for k in self.columns if k[0] == old]:
                self.columns[(new, key[1])] = self.columns.pop(key)
            for key in [k for k in self.column_origin if k[0] == old]:
                self.column_origin[(new, key[1])] = self.column_origin.pop(key)
            return
        before, after = (old, _fold(effect.old)), (old, _fold(effect.new))
        if before in self.columns:
            self.columns[after] = self.columns.pop(before)
        elif old not in self.tables:
            self.column_origin[after] = self.column_origin.pop(before, effect.old)

    def dropped(self, finding: Finding) -> None:
        if finding.kind == "table" and finding.table:
            self.tables.pop(_fold(finding.table), None)
            self.gone_tables.add(_fold(finding.table))
        elif finding.kind == "column" and finding.table and finding.column:
            key = (_fold(finding.table), _fold(finding.column))
            self.columns.pop(key, None)
            self.gone_columns.add(key)


def judge_plan(steps: Sequence[Any], dialect: str, database: Database | None,
               verdicts: Sequence[Verdict] | None = None) -> list[Judged]:
    """Each step of a plan with what it destroys on this database, in the plan's order.

    A finding loses nothing here, and is `spared` with the reason, when the database holds no table at all
    before the plan; when a step of the same plan (this one included, before it) created the object (a table
    created in the plan covers its columns, constraints and indexes); when the object is not in the database
    (a drop of what is not there destroys nothing); or, for a constraint or index, when the plan re-creates one
    of the same kind on the same columns (under any name) later. Everything else is destroyed: a table or
    column the database holds before the plan is refused whether or not it has rows now (rows may arrive
    before the step runs, and counting them would scan big tables). `database` None: judged without one
    (only what the plan itself settles is spared). `verdicts`: the steps' assess_revision, when the caller has
    them already.
    """
    verdicts = list(verdicts) if verdicts is not None else [assess_revision(s.script, s.forwards, dialect)
                                                            for s in steps]
    state = _PlanState()
    later: list[tuple[tuple[int, int], Created, str]] = [
        ((i, j), effect, step.revision) for i, (step, verdict) in enumerate(zip(steps, verdicts, strict=True))
        for j, effect in enumerate(verdict.effects) if isinstance(effect, Created) and effect.kind == "constraint"]
    judged: list[Judged] = []
    empty: bool | None = None

    def database_empty() -> bool:
        nonlocal empty
        if empty is None:
            empty = database is not None and database.empty()
        return empty

    for i, (step, verdict) in enumerate(zip(steps, verdicts, strict=True)):
        result = Judged(step, verdict)
        seen: set[Finding] = set()
        for j, effect in enumerate(verdict.effects):
            if not isinstance(effect, Finding):
                state.apply(effect, _Made(step.revision, (i, j)))
                continue
            if effect in seen:
                continue
            seen.add(effect)
            why = _spared(effect, (i, j), step.revision, state, database, later, database_empty)
            if why is None:
                result.destroys.append(effect)
            else:
                result.spared.append((effect, why))
            state.dropped(effect)
        if verdict.uninspectable and not database_empty():
            result.uninspectable = verdict.uninspectable
        judged.append(result)
    if database is not None:
        database.done()
    return judged


def _spared(finding: Finding, at: tuple[int, int], revision: str, state: _PlanState, database: Database | None,
            later: list[tuple[tuple[int, int], Created, str]], database_empty: Any) -> str | None:
    """Why `finding` loses nothing on this database, or None when it destroys what the database holds."""
    table = finding.table

    def made(by: _Made | None, what: str = "it") -> str | None:
        if by is None:
            return None
        return f"this revision creates {what} first" if by.revision == revision else \
            f"{by.revision} creates {what} earlier in this plan"

    # The object itself first, then its table (a table created in the plan covers all it holds).
    created = None
    if finding.kind in {"column", "column-change"} and table and finding.column:
        created = made(state.columns.get((_fold(table), _fold(finding.column))))
    elif finding.kind == "constraint" and finding.name:
        created = made(state.constraints.get((_fold(table) if table else None, _fold(finding.name))))
    elif finding.kind == "type" and finding.name:
        created = made(state.types.get(_fold(finding.name)))
    elif finding.kind == "object" and finding.name:
        created = made(state.objects.get(_fold(finding.name)))
    if created is None and table:
        created = made(state.made_table(table), "it" if finding.kind == "table" else table)
    if created:
        return created
    if table and (_fold(table) in state.gone_tables or (
            finding.kind == "column" and finding.column
            and (_fold(table), _fold(finding.column)) in state.gone_columns)):
        return "an earlier step of this plan drops it already"
    if database is None:
        return None
    if database_empty():
        return "the database holds no table before this plan"
    origin = state.origin(table) if table else None
    if origin is not None and finding.kind in {"table", "column", "column-change", "rows", "constraint"}:
        if not database.has_table(origin):
            return "the database has no such table"
    if finding.kind in {"column", "column-change"} and origin and finding.column:
        if not database.has_column(origin, state.column_origin_of(table or origin, finding.column)):
            return "the database has no such column"
    if finding.kind == "type" and finding.name and not database.has_type(finding.name):
        return "the database has no such type"
    if finding.kind == "constraint" and origin and finding.name:
        return _recreated(finding, at, revision, origin, database, later)
    return None


def _recreated(finding: Finding, at: tuple[int, int], dropping: str, origin: str, database: Database,
               later: list[tuple[tuple[int, int], Created, str]]) -> str | None:
    """A constraint or index of the database dropped, then created again by the plan with the same kind on the
    same columns (a foreign key: to the same table): no row is lost, the guarantee stays."""
    existing = database.constraint(origin, finding.name or "")
    if existing is None:
        return None  # not found by that name: its columns are unknown, so it counts as lost
    family, columns, referent = existing
    for position, created, revision in later:
        if position <= at or created.table is None or _fold(created.table) not in {_fold(finding.table or ""),
                                                                                    _fold(origin)}:
            continue
        same_kind = created.family == family or (family == "check" and created.family == "check")
        if not same_kind:
            continue
        if family == "check":
            if created.name and _fold(created.name) == _fold(finding.name or ""):
                return f"{'this revision' if revision == dropping else revision} creates it again"
            continue
        if tuple(_fold(c) for c in created.columns) != columns:
            continue
        if family == "foreignkey" and referent and created.referent and _split(_fold(created.referent))[1] != referent:
            continue
        who = "this revision" if revision == dropping else revision
        if created.name and _fold(created.name) == _fold(finding.name or ""):
            return f"{who} creates it again"
        return f"{who} re-creates it as {created.name or 'an unnamed one'} on the same columns"
    return None
