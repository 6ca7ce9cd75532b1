"""P111: a data migration's lightweight table (`sa.table("t", sa.column("c", Type))`) that types a column
otherwise than the schema has it at that revision.

psycopg 3 and asyncpg make SQLAlchemy render a cast on every bound parameter (`%(status)s::VARCHAR`), so a
column declared String for what the schema made a named Enum fails on PostgreSQL ("column is of type post_status
but expression is of type character varying"), where psycopg2 inlined the value and PostgreSQL coerced it.

The schema comes from the version files themselves, read with `ast` like project.core.history.enums: a scratch
SQLite replay cannot tell an enum from a VARCHAR, nor a JSON from a TEXT. Each file yields facts (cached with the
rest of checks.py's per-file facts): the column ops it runs and the lightweight columns it declares; the history is
then replayed in revision order. Only type families that fail when mixed are compared; lengths never are, and a
type the reading does not know is never guessed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Type name -> family. Integer and Numeric share one: PostgreSQL casts between them on assignment.
FAMILIES = {
    **dict.fromkeys(("Integer", "INTEGER", "INT", "BigInteger", "BIGINT", "SmallInteger", "SMALLINT", "Numeric",
                     "NUMERIC", "DECIMAL", "Float", "FLOAT", "REAL", "Double", "DOUBLE", "DOUBLE_PRECISION"),
                    "number"),
    **dict.fromkeys(("String", "VARCHAR", "Text", "TEXT", "Unicode", "UnicodeText", "NVARCHAR", "CHAR", "NCHAR",
                     "CLOB"), "string"),
    **dict.fromkeys(("Boolean", "BOOLEAN"), "boolean"),
    **dict.fromkeys(("Enum", "ENUM"), "enum"),
    **dict.fromkeys(("JSON", "JSONB"), "json"),
    **dict.fromkeys(("DateTime", "DATETIME", "TIMESTAMP", "Date", "DATE"), "datetime"),
    **dict.fromkeys(("Time", "TIME"), "time"),
    **dict.fromkeys(("LargeBinary", "BLOB", "BINARY", "VARBINARY", "BYTEA"), "binary"),
    **dict.fromkeys(("Uuid", "UUID"), "uuid"),
}

Key = tuple[str, str]  # (table, column)


# --- per file ---------------------------------------------------------------------------------------


def file_facts(tree: ast.Module) -> dict[str, Any]:
    """The column ops of upgrade() in source order, and the lightweight columns the file declares."""
    names = _type_names(tree)
    ops: list[list[Any]] = []
    upgrade = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade"), None)
    if upgrade is not None:
        _statements(upgrade.body, {}, names, ops)
    declared = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _name(node) == "table" and node.args and _string(node.args[0]):
            for arg in node.args[1:]:
                if isinstance(arg, ast.Call) and _name(arg) == "column" and len(arg.args) > 1 \
                        and (column := _string(arg.args[0])) and (family := _family(arg.args[1], names)):
                    declared.append([_string(node.args[0]), column, family, arg.lineno])
    return {"ops": ops, "declared": declared}


def _type_names(tree: ast.Module) -> dict[str, str]:
    """`task_state = sa.Enum(...)` anywhere in the file: the name's family, for columns typed by it."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and (family := _family(node.value, {})):
            names[node.targets[0].id] = family
    return names


def _statements(body: list[ast.stmt], batches: dict[str, str], names: dict[str, str], ops: list[list[Any]]) -> None:
    for statement in body:
        if isinstance(statement, ast.With):
            inner = dict(batches)
            for item in statement.items:
                call = item.context_expr
                if isinstance(call, ast.Call) and _name(call) == "batch_alter_table" and call.args \
                        and isinstance(item.optional_vars, ast.Name) and (table := _string(call.args[0])):
                    inner[item.optional_vars.id] = table
            _statements(statement.body, inner, names, ops)
        elif isinstance(statement, ast.If | ast.For | ast.Try):
            for block in ("body", "orelse", "finalbody"):
                _statements(getattr(statement, block, []), batches, names, ops)
        elif isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
            ops.extend(_op(statement.value, batches, names))


def _op(call: ast.Call, batches: dict[str, str], names: dict[str, str]) -> Iterator[list[Any]]:
    func = call.func
    receiver = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else None
    args = list(call.args)
    if receiver in batches:
        args.insert(0, ast.Constant(batches[receiver]))
    elif receiver != "op":
        return
    table = _string(args[0]) if args else None
    name = _name(call)
    if table is None:
        return
    if name == "create_table":
        for arg in args[1:]:
            yield from _column(table, arg, names)
    elif name == "add_column" and len(args) > 1:
        yield from _column(table, args[1], names)
    elif name == "drop_table":
        yield ["drop_table", table]
    elif name == "rename_table" and len(args) > 1 and (new := _string(args[1])):
        yield ["rename_table", table, new]
    elif name == "drop_column" and len(args) > 1 and (column := _string(args[1])):
        yield ["drop", table, column]
    elif name == "alter_column" and len(args) > 1 and (column := _string(args[1])):
        keywords = {k.arg: k.value for k in call.keywords}
        family = _family(keywords["type_"], names) if "type_" in keywords else None
        new = _string(keywords["new_column_name"]) if "new_column_name" in keywords else None
        if "type_" in keywords or new:
            yield ["alter", table, column, family, new, "type_" in keywords]


def _column(table: str, node: ast.expr, names: dict[str, str]) -> Iterator[list[Any]]:
    if isinstance(node, ast.Call) and _name(node) == "Column" and node.args and (column := _string(node.args[0])):
        types = [*node.args[1:2], *(k.value for k in node.keywords if k.arg == "type_")]
        family = next((f for f in (_family(t, names) for t in types) if f), None)
        yield ["add", table, column, family]


def _family(node: ast.expr, names: dict[str, str]) -> str | None:
    """`sa.String(40)`, `String`, `postgresql.JSONB()`, a name bound to an Enum: the type's family, or None."""
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    call = node if isinstance(node, ast.Call) else None
    target = call.func if call is not None else node
    type_name = target.attr if isinstance(target, ast.Attribute) else target.id if isinstance(target, ast.Name) \
        else None
    family = FAMILIES.get(type_name or "")
    if family == "enum" and call is not None:
        native = next((k.value for k in call.keywords if k.arg == "native_enum"), None)
        if isinstance(native, ast.Constant) and native.value is False:
            return "string"  # a VARCHAR on every engine
    return family


def _name(call: ast.Call) -> str | None:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


def _string(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


# --- across the history --------------------------------------------------------------------------


def mismatches(files: list[Any]) -> Iterator[tuple[Path, int, str]]:
    """(path, line, message) for each declared column whose family differs from the schema's at its revision.

    `files` are checks.VersionFile objects (revision, down_revisions, path, data_types facts)."""
    by_rev = {vf.revision: vf for vf in files if vf.revision}
    after: dict[str, dict[Key, str | None]] = {}
    for vf in _in_order(by_rev):
        before: dict[Key, str | None] = {}
        for parent in vf.down_revisions:
            before.update(after.get(parent, {}))
        facts = vf.data_types or {"ops": [], "declared": []}
        state = _apply(dict(before), facts["ops"])
        after[vf.revision] = state
        for table, column, declared, line in facts["declared"]:
            # A column dropped by this same revision (copied first, then dropped) is read as it was before.
            schema = state.get((table, column)) or before.get((table, column))
            if schema and declared != schema:
                yield vf.path, line, (
                    f"sa.column({column!r}) is declared {declared}, but {table}.{column} is {_article(schema)} "
                    f"column at this revision: psycopg 3 and asyncpg send the value typed as declared and "
                    "PostgreSQL refuses it; type it as the schema does")


def _apply(state: dict[Key, str | None], ops: list[list[Any]]) -> dict[Key, str | None]:
    for op in ops:
        kind, table = op[0], op[1]
        if kind == "add":
            state[(table, op[2])] = op[3]
        elif kind == "drop":
            state.pop((table, op[2]), None)
        elif kind == "drop_table":
            state = {k: v for k, v in state.items() if k[0] != table}
        elif kind == "rename_table":
            state = {((op[2] if k[0] == table else k[0]), k[1]): v for k, v in state.items()}
        elif kind == "alter":
            family = state.pop((table, op[2]), None)
            if op[5]:
                family = op[3]  # a new type_ (None when the reading does not know it)
            state[(table, op[4] or op[2])] = family
    return state


def _in_order(by_rev: dict[str, Any]) -> list[Any]:
    """Parents before children (a merge after all its parents); revisions with unknown parents still come."""
    ordered: list[Any] = []
    seen: set[str] = set()
    visiting: set[str] = set()  # a cycle (reported by check's graph problems) must not loop here
    for start in by_rev:
        stack = [(start, False)]
        while stack:
            rev, expanded = stack.pop()
            if rev in seen or rev not in by_rev or (rev in visiting and not expanded):
                continue
            if expanded:
                seen.add(rev)
                ordered.append(by_rev[rev])
                continue
            visiting.add(rev)
            stack.append((rev, True))
            stack.extend((p, False) for p in by_rev[rev].down_revisions if p not in seen)
    return ordered


def _article(family: str) -> str:
    return f"an {family}" if family[0] in "aeiou" else f"a {family}"
