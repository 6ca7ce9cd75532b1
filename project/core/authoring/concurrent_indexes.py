"""`makemigrations --concurrent-indexes`: new indexes on existing tables built CONCURRENTLY in an autocommit_block.

PostgreSQL refuses CREATE/DROP INDEX CONCURRENTLY inside a transaction, and every revision runs in one; Alembic's
dialect-neutral `autocommit_block` runs the part that must be outside (project.core.inspection.concurrently says
why, and lints hand-written revisions for it). MySQL/MariaDB and SQLite ignore `postgresql_concurrently`.
"""

from __future__ import annotations

from typing import Any


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
            # An index dropped between a foreign key's drop and re-creation (project.core.authoring.ordering)
            # stays there: after the key is back, MySQL/MariaDB would refuse its drop.
            moved = [o for o in op.ops if isinstance(o, (ops.CreateIndexOp, ops.DropIndexOp))
                     and not getattr(o, "between_foreign_key", None)]
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
