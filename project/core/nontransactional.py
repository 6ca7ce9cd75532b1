"""Revisions that run (partly) outside a transaction: PostgreSQL's CREATE/DROP INDEX CONCURRENTLY.

A concurrent index build lets writes go on while the index is built, but PostgreSQL refuses it inside a
transaction block, and every revision runs in one. A revision declares the part that must run outside
with Alembic's own, dialect-neutral `autocommit_block`:

    with op.get_context().autocommit_block():
        op.create_index("ix_tasks_title", "tasks", ["title"], postgresql_concurrently=True)

Online, Alembic commits the revision's transaction so far, runs the block in autocommit mode, then opens a
new transaction for the rest (and the alembic_version update). Offline (`migrate --sql`), the PostgreSQL
script gets `COMMIT;` before the block and `BEGIN;` after it, so the statement is outside any transaction.
MySQL/MariaDB and SQLite ignore `postgresql_concurrently` and run the same revision as usual.

Here: the lint rule (P112) refusing CONCURRENTLY outside such a block, the makemigrations rewrite that
writes new indexes on existing tables that way (`--concurrent-indexes`), and the detection of the INVALID
index a failed concurrent build leaves behind.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RULE = "P112"
RULE_TEXT = "CONCURRENTLY outside an autocommit_block (PostgreSQL refuses it in a transaction)"
AUTOCOMMIT_CALLS = {"autocommit_block"}


# --- lint ------------------------------------------------------------------------------------------


def lint(path: Path, tree: ast.Module) -> Iterator[Any]:
    """P112: `postgresql_concurrently=<true>` on an index operation, or raw SQL saying CONCURRENTLY, that does
    not run inside `with ...autocommit_block():`. PostgreSQL fails it with "CREATE INDEX CONCURRENTLY cannot
    run inside a transaction block"."""
    from project.core.checks import Problem

    for node in _outside_autocommit(tree):
        if not isinstance(node, ast.Call):
            continue
        concurrently = next((k.value for k in node.keywords if k.arg == "postgresql_concurrently"), None)
        raw = _call_attr(node) == "execute" and any(_says_concurrently(a) for a in node.args)
        if (concurrently is not None and not _is_false(concurrently)) or raw:
            yield Problem("CONCURRENTLY inside the revision's transaction: PostgreSQL refuses it (\"cannot run "
                          "inside a transaction block\"); put it under `with op.get_context().autocommit_block():`",
                          path, node.lineno, RULE)


def _outside_autocommit(node: ast.AST) -> Iterator[ast.AST]:
    """Every node not lexically inside a `with` block over an autocommit_block() call."""
    yield node
    if isinstance(node, ast.With) and any(_is_autocommit(item.context_expr) for item in node.items):
        return
    for child in ast.iter_child_nodes(node):
        yield from _outside_autocommit(child)


def _is_autocommit(expr: ast.expr) -> bool:
    return isinstance(expr, ast.Call) and _call_attr(expr) in AUTOCOMMIT_CALLS


def _call_attr(call: ast.Call) -> str | None:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


def _is_false(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and not node.value


def _says_concurrently(node: ast.expr) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str) \
                and re.search(r"\bINDEX\s+CONCURRENTLY\b", sub.value, re.IGNORECASE):
            return True
    return False


# --- makemigrations --concurrent-indexes -------------------------------------------------------------


def _concurrent_index_op() -> Any:
    """The operation class, defined on first use: Alembic is not imported on the CLI's light paths."""
    global _ConcurrentIndexOp
    if _ConcurrentIndexOp is not None:
        return _ConcurrentIndexOp
    from alembic.autogenerate import renderers
    from alembic.operations.ops import MigrateOperation

    class ConcurrentIndexOp(MigrateOperation):
        """An index created or dropped CONCURRENTLY, rendered inside an autocommit_block (written only)."""

        def __init__(self, index_op: Any):
            self.index_op = index_op

    @renderers.dispatch_for(ConcurrentIndexOp)
    def _render(autogen_context: Any, op: ConcurrentIndexOp) -> list[str]:
        # Outside batch_alter_table: a batch runs its operations when its `with` block exits, after
        # any autocommit_block nested in it. create_index/drop_index need no batch on SQLite.
        inner = renderers.dispatch(op.index_op)(autogen_context, op.index_op)
        lines = inner if isinstance(inner, list) else [inner]
        return ["with op.get_context().autocommit_block():", *lines, ""]

    _ConcurrentIndexOp = ConcurrentIndexOp
    return ConcurrentIndexOp


_ConcurrentIndexOp: Any = None


def make_indexes_concurrent(upgrade_ops: Any, downgrade_ops: Any) -> list[str]:
    """Rewrite both directions: each index created or dropped on a table that exists before that direction
    runs (not created or dropped in it) becomes CONCURRENTLY, in an autocommit_block of its own, placed
    after the table's other changes. Returns the index names rewritten."""
    return _rewrite(upgrade_ops) + _rewrite(downgrade_ops)


def _rewrite(container: Any) -> list[str]:
    from alembic.operations import ops

    new_tables = {op.table_name for op in container.ops if isinstance(op, (ops.CreateTableOp, ops.DropTableOp))}
    concurrent = _concurrent_index_op()
    rewritten: list[str | None] = []
    result: list[Any] = []
    for op in container.ops:
        if isinstance(op, ops.ModifyTableOps) and op.table_name not in new_tables:
            moved = [o for o in op.ops if isinstance(o, (ops.CreateIndexOp, ops.DropIndexOp))]
            op.ops = [o for o in op.ops if o not in moved]
            if op.ops:
                result.append(op)
            for index_op in moved:
                index_op.kw["postgresql_concurrently"] = True
                rewritten.append(index_op.index_name)
                result.append(concurrent(index_op))
        elif isinstance(op, (ops.CreateIndexOp, ops.DropIndexOp)) and op.table_name not in new_tables:
            op.kw["postgresql_concurrently"] = True
            rewritten.append(op.index_name)
            result.append(concurrent(op))
        else:
            result.append(op)
    container.ops = result
    return [name for name in rewritten if name]


# --- a failed concurrent build -----------------------------------------------------------------------

_INDEX_NAME = re.compile(
    r"\bCREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?((?:\"[^\"]+\"|\w+)(?:\.(?:\"[^\"]+\"|\w+))?)",
    re.IGNORECASE,
)


def invalid_index_advice(connection: Any, exc: BaseException) -> str | None:
    """When `exc` failed a CREATE INDEX CONCURRENTLY on PostgreSQL and the index it names is left INVALID
    (pg_index.indisvalid false: a failed concurrent build keeps it, unused by queries but updated by every
    write), the sentence that says so and how to fix it; else None."""
    statement = getattr(exc, "statement", None)
    if connection.dialect.name != "postgresql" or not statement:
        return None
    match = _INDEX_NAME.search(statement)
    if not match:
        return None
    name = match.group(1)
    invalid = invalid_indexes(connection, [name.strip('"').split('"."')[-1].split(".")[-1]])
    if not invalid:
        return None
    return (f"The failed concurrent build left index {name} INVALID (pg_index.indisvalid = false): drop it with "
            f"`DROP INDEX CONCURRENTLY {name};`, then re-run migrate")


def invalid_indexes(connection: Any, names: list[str] | None = None) -> list[str]:
    """INVALID indexes of the current database's visible schemas (all, or those named)."""
    from sqlalchemy import text

    if connection.in_transaction():
        connection.rollback()  # the failed statement aborted the transaction
    try:
        rows = connection.execute(text(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE NOT i.indisvalid AND pg_catalog.pg_table_is_visible(c.oid)"
            + (" AND c.relname = ANY(:names)" if names is not None else "") + " ORDER BY c.relname"
        ), {"names": names} if names is not None else {}).scalars().all()
    finally:
        if connection.in_transaction():
            connection.rollback()
    return list(rows)
