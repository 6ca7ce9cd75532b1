"""Which columns the history made named enums, read from the version files themselves.

The scratch SQLite database cannot say: SQLite stores an enum as VARCHAR, so a dropped enum column or table would
be written without dropping its PostgreSQL type, and its downgrade would bring the column back as VARCHAR. The
version files do say (`sa.Column("status", sa.Enum("draft", "published", name="post_status"))`), so their
`upgrade()` functions are read in revision order, following create_table, add_column, alter_column (type_ and
new_column_name), rename_table, drop_column and drop_table, plain or in a batch_alter_table block. Anything the
reading cannot follow (values computed at run time, a helper function) is left out: that column is treated as
before, never guessed.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import sqlalchemy as sa

Columns = dict[tuple[str, str], sa.Enum]


def enum_columns(settings: Any, upto: str = "heads") -> Columns:
    """(table, column) -> the named Enum the history left that column with, at revision `upto` (default: its heads)."""
    from project.core.history.scripts import alembic_config, script_directory

    script = script_directory(alembic_config(settings))
    columns: Columns = {}
    for revision in reversed(list(script.walk_revisions("base", upto))):
        try:
            tree = ast.parse(Path(revision.path).read_text())
        except (OSError, SyntaxError, ValueError):
            continue  # a file that cannot be read is reported by check, not here
        reader = Reader(columns)
        reader.assignments(tree.body)  # `post_status = sa.Enum(...)` at module level, used by name below
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == "upgrade":
                reader.statements(node.body, batches={})
    return columns


class Reader:
    def __init__(self, columns: Columns):
        self.columns = columns
        self.names: dict[str, sa.Enum] = {}

    def assignments(self, body: list[ast.stmt]) -> None:
        for statement in body:
            if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                target = statement.targets[0]
                if isinstance(target, ast.Name) and (enum := self.enum(statement.value)) is not None:
                    self.names[target.id] = enum

    def statements(self, body: list[ast.stmt], batches: dict[str, str]) -> None:
        self.assignments(body)
        for statement in body:
            if isinstance(statement, ast.With):
                inner = dict(batches)
                for item in statement.items:
                    call = item.context_expr
                    if isinstance(call, ast.Call) and _method(call) == ("op", "batch_alter_table") \
                            and isinstance(item.optional_vars, ast.Name):
                        table = _string(call.args[0]) if call.args else None
                        if table:
                            inner[item.optional_vars.id] = table
                self.statements(statement.body, inner)
            elif isinstance(statement, ast.If | ast.For | ast.Try):
                for block in ("body", "orelse", "finalbody"):
                    self.statements(getattr(statement, block, []), batches)
                for handler in getattr(statement, "handlers", []):
                    self.statements(handler.body, batches)
            elif isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
                self.call(statement.value, batches)

    def call(self, call: ast.Call, batches: dict[str, str]) -> None:
        receiver, name = _method(call)
        args = list(call.args)
        if receiver in batches:
            args.insert(0, ast.Constant(batches[receiver]))
        elif receiver != "op":
            return
        table = _string(args[0]) if args else None
        if table is None:
            return
        if name == "create_table":
            for arg in args[1:]:
                self.column(table, arg)
        elif name == "add_column" and len(args) > 1:
            self.column(table, args[1])
        elif name == "drop_table":
            for key in [k for k in self.columns if k[0] == table]:
                del self.columns[key]
        elif name == "rename_table" and len(args) > 1 and (new := _string(args[1])):
            for key in [k for k in self.columns if k[0] == table]:
                self.columns[(new, key[1])] = self.columns.pop(key)
        elif name in ("drop_column", "alter_column") and len(args) > 1 and (column := _string(args[1])):
            self.alter(table, column, call, drop=name == "drop_column")

    def alter(self, table: str, column: str, call: ast.Call, drop: bool) -> None:
        keywords = {k.arg: k.value for k in call.keywords}
        enum = self.columns.pop((table, column), None)
        if drop:
            return
        if "type_" in keywords:
            enum = self.enum(keywords["type_"])
        new = _string(keywords["new_column_name"]) if "new_column_name" in keywords else column
        if enum is not None and new:
            self.columns[(table, new)] = enum

    def column(self, table: str, node: ast.expr) -> None:
        if not (isinstance(node, ast.Call) and _method(node)[1] == "Column" and node.args):
            return
        name = _string(node.args[0])
        types = [*node.args[1:], *(k.value for k in node.keywords if k.arg == "type_")]
        enum = next((e for e in map(self.enum, types) if e is not None), None)
        if name and enum is not None:
            self.columns[(table, name)] = enum

    def enum(self, node: ast.expr) -> sa.Enum | None:
        """A named Enum with literal values (or a name bound to one); None for anything the reading is unsure of."""
        if isinstance(node, ast.Name):
            return self.names.get(node.id)
        if not (isinstance(node, ast.Call) and _method(node)[1] in ("Enum", "ENUM")):
            return None
        values = [value for arg in node.args if (value := _string(arg)) is not None]
        keywords = {k.arg: k.value for k in node.keywords}
        name = _string(keywords["name"]) if "name" in keywords else None
        native = keywords.get("native_enum")
        if not values or len(values) != len(node.args) or not name or (
                isinstance(native, ast.Constant) and native.value is False):
            return None
        return sa.Enum(*values, name=name)


def _method(node: ast.expr) -> tuple[str | None, str | None]:
    """`op.add_column(...)` -> ("op", "add_column"); `Column(...)` -> (None, "Column")."""
    if not isinstance(node, ast.Call):
        return None, None
    func = node.func
    if isinstance(func, ast.Attribute):
        return (func.value.id if isinstance(func.value, ast.Name) else None), func.attr
    if isinstance(func, ast.Name):
        return None, func.id
    return None, None


def _string(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


