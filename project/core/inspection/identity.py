"""A version file's identity read from its syntax tree, without importing it: revision, down_revision, branch_labels."""

from __future__ import annotations

import ast
from typing import Any


def identity(tree: ast.Module) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for node in tree.body:
        target, value = _assignment(node)
        if target == "revision" and value is not None:
            found["revision"], found["revision_line"] = _literal(value), node.lineno
        elif target == "down_revision" and value is not None:
            down = _literal(value)
            found["down_revisions"] = list(down) if isinstance(down, (tuple, list)) else ([down] if down else [])
            found["down_line"] = node.lineno
        elif target == "branch_labels" and value is not None:
            labels = _literal(value)
            found["branch_labels"] = list(labels) if isinstance(labels, (tuple, list)) else ([labels] if labels else [])
    return found


def _assignment(node: ast.stmt) -> tuple[str | None, ast.expr | None]:
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id, node.value
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id, node.value
    return None, None


def _literal(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None
