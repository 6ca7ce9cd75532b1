"""P112: CONCURRENTLY outside an autocommit_block, which PostgreSQL refuses inside the revision's transaction.

A concurrent index build lets writes go on while the index is built, but PostgreSQL refuses it inside a
transaction block, and every revision runs in one. A revision declares the part that must run outside
with Alembic's own, dialect-neutral `autocommit_block`:

    with op.get_context().autocommit_block():
        op.create_index("ix_tasks_title", "tasks", ["title"], postgresql_concurrently=True)

Online, Alembic commits the revision's transaction so far, runs the block in autocommit mode, then opens a
new transaction for the rest (and the alembic_version update). Offline (`migrate --sql`), the PostgreSQL
script gets `COMMIT;` before the block and `BEGIN;` after it, so the statement is outside any transaction.
MySQL/MariaDB and SQLite ignore `postgresql_concurrently` and run the same revision as usual.
makemigrations writes such blocks itself (project.core.authoring.concurrent_indexes); the runner reports
the INVALID index a failed build leaves (project.core.runner.invalid_indexes).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from project.core.inspection.problem import Problem

RULE = "P112"
RULE_TEXT = "CONCURRENTLY outside an autocommit_block (PostgreSQL refuses it in a transaction)"
AUTOCOMMIT_CALLS = {"autocommit_block"}


def lint(path: Path, tree: ast.Module) -> Iterator[Problem]:
    """P112: `postgresql_concurrently=<true>` on an index operation, or raw SQL saying CONCURRENTLY, that does
    not run inside `with ...autocommit_block():`. PostgreSQL fails it with "CREATE INDEX CONCURRENTLY cannot
    run inside a transaction block"."""
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
