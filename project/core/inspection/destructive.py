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
            source = next((s for t, s in mapping.items() if fold_name(t) == column), None)
            if allows_null or source is None:
                continue
            named = {f"{fold_name(table)}.{fold_name(source)}", f"{fold_name(table)}.{column}"}
            if before.get(fold_name(source)) or (fold_name(source) not in before and named & set(hints())):
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
            before = columns.pop(fold_name(old), None)
            not_null = not _allows_null(action.this)
            columns[fold_name(column)] = not not_null
            if not_null and (before or (before is None and {f"{fold_name(table)}.{fold_name(old)}",
                                                            f"{fold_name(table)}.{fold_name(column)}"} & set(hints()))):
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
                self.nullable.setdefault(table, {})[fold_name(action.name)] = _allows_null(action)
            elif isinstance(action, exp.AlterColumn) and action.args.get("allow_null") is not None:
                self.nullable.setdefault(table, {})[fold_name(_name(action.this))] = bool(action.args["allow_null"])
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

    columns = {fold_name(c.name): _allows_null(c) for c in schema.expressions if isinstance(c, exp.ColumnDef)}
    for key in schema.find_all(exp.PrimaryKey):
        for part in key.expressions:
            columns[fold_name(_name(part.this if isinstance(part, exp.Ordered) else part))] = False
    return columns


def _lost_in_rebuild(table: str, before: list[str] | None, copied: set[str]) -> list[str]:
    if before is None:
        return [f"rebuilds table {table} (columns it does not copy are lost)"]
    return [f"drops column {table}.{column}" for column in before if column not in copied]


def not_null_changes(script: Any, forwards: bool = True, dialect: str = "postgresql") -> set[str]:
    """The folded "table.column" names a revision makes NOT NULL (nullable=False on a column that allowed NULL,
    as its Alembic operations say): destructive_script's `not_null` hints for offline SQL."""
    findings = assess_revision(script, forwards, dialect).findings
    return {f"{fold_name(split_table(f.table)[1])}.{fold_name(f.column)}" for f in findings
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


_contexts: dict[str, tuple[Any, _BindOutput]] = {}  # dialect -> its offline MigrationContext and output


def _offline_context(dialect: str, recorded: list[Any]) -> Any:
    """An offline (as_sql) MigrationContext for `dialect` whose bind output goes to `recorded`.

    Configuring one builds a dialect, an impl and the version Table: most of what recording a small revision
    costs. Nothing of a revision's stays in it (its operations are recorded, never invoked; what it sends
    through the bind goes to the output), so one per dialect serves every revision of the process."""
    from alembic.runtime.migration import MigrationContext

    if dialect not in _contexts:
        output = _BindOutput([])
        context = MigrationContext.configure(
            dialect_name=dialect, opts={"as_sql": True, "output_buffer": output, "literal_binds": True})
        _contexts[dialect] = (context, output)
    context, output = _contexts[dialect]
    output.recorded = recorded
    return context


def record_revision(script: Any, forwards: bool = True, dialect: str = "postgresql") -> Recorded:
    """Run a revision's upgrade() (or downgrade()) without a database, recording its operations.

    The MigrationContext is offline (as_sql) for `dialect`, so `op.get_bind()` works and DDL the
    revision runs through the bind directly (e.g. an Enum's DROP TYPE) is recorded too, in order.
    """
    recorded: list[Any] = []
    context = _offline_context(dialect, recorded)
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


def fold_name(name: str) -> str:
    """Names compared without case: conservative both ways for the policy (see plan_judge)."""
    return name.casefold()


def split_table(table: str) -> tuple[str | None, str]:
    """"schema.table" -> (schema, table); (None, table) when unqualified."""
    schema, _, name = table.rpartition(".")
    return schema or None, name
