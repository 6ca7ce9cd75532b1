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
"deletes rows from posts", "narrows users.name from VARCHAR(200) to VARCHAR(50)".
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
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


# --- statements ---------------------------------------------------------------------------------


def _parse(statement: str, dialect: str) -> list[Any]:
    import sqlglot
    from sqlglot.errors import ParseError

    quiet_library_logs()
    try:
        return [e for e in sqlglot.parse(statement, read=sqlglot_dialect(dialect)) if e is not None]
    except ParseError:
        return []


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
    classification, `classify_revision`, knows it from Alembic's `existing_type`). Unparseable text
    yields []. SQLite's batch rebuild (DROP TABLE x + ALTER TABLE _alembic_tmp_x RENAME TO x) is reported
    as "drops table x" by this function; `destructive_script` recognises the pattern.
    """
    findings: list[str] = []
    for expression in _parse(statement, dialect):
        findings.extend(_destructive_expression(expression))
    return findings


def _destructive_expression(expression: Any) -> list[str]:
    from sqlglot import exp

    if isinstance(expression, exp.Drop):
        kind = (expression.args.get("kind") or "object").lower()
        names = [_name(t) for t in expression.args.get("tables") or []] or [_name(expression.this)]
        on = expression.args.get("cluster")  # MySQL: DROP INDEX ix ON table
        suffix = f" on {_name(on.this)}" if isinstance(on, exp.OnProperty) else ""
        return [f"drops {kind} {n}{suffix}" for n in names]
    if isinstance(expression, exp.TruncateTable):
        return [f"deletes all rows from {_name(t)}" for t in expression.expressions]
    if isinstance(expression, exp.Delete):
        where = "" if expression.args.get("where") is not None else "all "
        return [f"deletes {where}rows from {_name(expression.this)}"]
    if isinstance(expression, exp.Alter):
        return _destructive_alter(expression)
    return []


def _destructive_alter(expression: Any) -> list[str]:
    from sqlglot import exp

    table = _name(expression.this)
    findings = []
    for action in expression.args.get("actions") or []:
        if isinstance(action, exp.Drop):
            kind = (action.args.get("kind") or "column").lower()
            for target in action.args.get("tables") or []:
                if kind == "column":
                    findings.append(f"drops column {table}.{_name(target)}")
                else:
                    findings.append(f"drops {kind} {_name(target)} on {table}")
        elif isinstance(action, exp.DropPrimaryKey):
            findings.append(f"drops primary key on {table}")
        elif isinstance(action, exp.AlterColumn) and action.args.get("allow_null") is False:
            findings.append(f"makes {table}.{_name(action.this)} NOT NULL")
    return findings


def destructive_script(
    statements: Sequence[str], dialect: str, tables: Mapping[str, Sequence[str]] | None = None
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
    Returns one list per statement, in order.
    """
    known: dict[str, list[str]] = {k: list(v) for k, v in (tables or {}).items()}
    copied: dict[str, set[str]] = {}  # tmp table -> source columns its INSERT...SELECT reads
    results: list[list[str]] = []
    for statement in statements:
        parsed = _parse(statement, dialect)
        findings: list[str] = []
        for expression in parsed:
            findings.extend(_script_step(expression, known, copied))
        results.append(findings)
    return results


def _script_step(expression: Any, known: dict[str, list[str]], copied: dict[str, set[str]]) -> list[str]:
    from sqlglot import exp

    if isinstance(expression, exp.Create) and (expression.args.get("kind") or "").upper() == "TABLE":
        schema = expression.this
        if isinstance(schema, exp.Schema):
            known[_name(schema.this)] = [c.name for c in schema.expressions if isinstance(c, exp.ColumnDef)]
        return []
    if isinstance(expression, exp.Insert):
        target = expression.this.this if isinstance(expression.this, exp.Schema) else expression.this
        name = _name(target)
        select = expression.expression
        if name.startswith(_BATCH_TMP_PREFIX) and isinstance(select, exp.Select):
            copied[name[len(_BATCH_TMP_PREFIX):]] = {c.name for c in select.find_all(exp.Column)}
        return []
    if isinstance(expression, exp.Drop) and (expression.args.get("kind") or "").upper() == "TABLE":
        findings = []
        for table in expression.args.get("tables") or []:
            name = _name(table)
            if name in copied:
                findings.extend(_lost_in_rebuild(name, known.get(name), copied.pop(name)))
            else:
                findings.append(f"drops table {name}")
            known.pop(name, None)
        return findings
    if isinstance(expression, exp.Alter):
        _track_alter(expression, known)
    return _destructive_expression(expression)


def _lost_in_rebuild(table: str, before: list[str] | None, copied: set[str]) -> list[str]:
    if before is None:
        return [f"rebuilds table {table} (columns it does not copy are lost)"]
    return [f"drops column {table}.{column}" for column in before if column not in copied]


def _track_alter(expression: Any, known: dict[str, list[str]]) -> None:
    from sqlglot import exp

    table = _name(expression.this)
    for action in expression.args.get("actions") or []:
        if isinstance(action, exp.AlterRename):
            known[_name(action.this)] = known.pop(table, [])
        elif isinstance(action, exp.ColumnDef) and table in known:
            known[table].append(action.name)
        elif isinstance(action, exp.Drop) and (action.args.get("kind") or "").upper() == "COLUMN" and table in known:
            dropped = {_name(t) for t in action.args.get("tables") or []}
            known[table] = [c for c in known[table] if c not in dropped]


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


def record_revision(script: Any, forwards: bool = True, dialect: str = "postgresql") -> Recorded:
    """Run a revision's upgrade() (or downgrade()) without a database, recording its operations.

    The MigrationContext is offline (as_sql) for `dialect`, so `op.get_bind()` works and DDL the
    revision runs through the bind directly (e.g. an Enum's DROP TYPE) lands in a buffer we parse.
    """
    from alembic.runtime.migration import MigrationContext

    buffer = io.StringIO()
    context = MigrationContext.configure(
        dialect_name=dialect, opts={"as_sql": True, "output_buffer": buffer, "literal_binds": True}
    )
    recorded: list[Any] = []
    error = None
    with _recording(context, recorded):
        # Caught inside the block so that Operations.context always removes its proxy again.
        try:
            (script.module.upgrade if forwards else script.module.downgrade)()
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
    return Recorded(recorded, _split_sql(buffer.getvalue()), error)


def _split_sql(text: str) -> list[str]:
    return [s.strip() for s in text.split(";\n") if s.strip()]


@dataclass
class Verdict:
    """Three answers kept apart: what a step destroys (named), why it could not be inspected offline (it is
    not counted as destructive, but the policy asks about it with its own message), and whether it has no
    downgrade at all (unapplying it cannot work)."""

    destroys: list[str] = field(default_factory=list)
    uninspectable: str | None = None
    no_downgrade: bool = False


def assess_revision(script: Any, forwards: bool = True, dialect: str = "postgresql") -> Verdict:
    """What applying (forwards) or unapplying a revision does to data, as far as can be told offline."""
    recorded = record_revision(script, forwards, dialect)
    findings: list[str] = []
    for operation in recorded.operations:
        findings.extend(classify_operation(operation, dialect))
    for statement in recorded.direct_sql:
        findings.extend(destructive_sql(statement, dialect))
    verdict = Verdict(_unique(findings))
    if recorded.error and not forwards and recorded.error.startswith("NotImplementedError"):
        verdict.no_downgrade = True
    elif recorded.error:
        name = "upgrade()" if forwards else "downgrade()"
        verdict.uninspectable = f"its {name} cannot run without a database ({recorded.error})"
    return verdict


def classify_revision(script: Any, forwards: bool = True, dialect: str = "postgresql") -> list[str]:
    """What applying (forwards) or unapplying a revision destroys; [] when nothing (or when it cannot tell:
    see assess_revision)."""
    return assess_revision(script, forwards, dialect).destroys


def classify_operation(operation: Any, dialect: str = "postgresql") -> list[str]:
    """What one Alembic MigrateOperation destroys."""
    from alembic.operations import ops

    if isinstance(operation, ops.DropTableOp):
        return [f"drops table {_qualified(operation.schema, operation.table_name)}"]
    if isinstance(operation, ops.DropColumnOp):
        return [f"drops column {_qualified(operation.schema, operation.table_name)}.{operation.column_name}"]
    if isinstance(operation, ops.DropConstraintOp):
        kind = {"foreignkey": "foreign key", "unique": "unique constraint", "primary": "primary key",
                "check": "check constraint"}.get(operation.constraint_type or "", "constraint")
        return [f"drops {kind} {operation.constraint_name} on {operation.table_name}"]
    if isinstance(operation, ops.DropIndexOp):
        return [f"drops index {operation.index_name} on {operation.table_name}"]
    if isinstance(operation, ops.AlterColumnOp):
        return _classify_alter_column(operation)
    if isinstance(operation, ops.ExecuteSQLOp):
        return _classify_execute(operation.sqltext, dialect)
    if isinstance(operation, ops.OpContainer):
        return [f for child in operation.ops for f in classify_operation(child, dialect)]
    return []


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


def _classify_execute(sqltext: Any, dialect: str) -> list[str]:
    import sqlalchemy as sa
    from sqlalchemy.sql.dml import Delete

    if isinstance(sqltext, str):
        return destructive_sql(sqltext, dialect)
    if isinstance(sqltext, sa.TextClause):
        return destructive_sql(sqltext.text, dialect)
    if isinstance(sqltext, Delete):
        where = "" if sqltext.whereclause is not None else "all "
        return [f"deletes {where}rows from {sqltext.table.description}"]
    # Other constructs (update(), insert(), DDL elements): render them and read the SQL.
    try:
        from sqlalchemy.dialects import registry

        compiled = sqltext.compile(dialect=registry.load(dialect)(), compile_kwargs={"literal_binds": True})
        return destructive_sql(str(compiled), dialect)
    except Exception:
        return []


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
