"""Writing backfills into revisions: the renderer of history.backfill's operation, and the operations of the
expand-backfill-contract recipes (docs/phases.md) that makemigrations' questioner can write.

A rename answered "in two releases" becomes, this release, an expand revision adding the new column (nullable:
old code does not write it) and an expand revision backfilling it from the old one (alone: check's Z303); the
next makemigrations, once the models drop the old column, writes the contract revision (a drop: phase contract).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import renderers
from alembic.operations import ops

from project.core.history.backfill import Backfill, BackfillOp

IMPORT = "from project.core.history.backfill import backfill"


@renderers.dispatch_for(BackfillOp)
def _render(autogen_context: Any, op: BackfillOp) -> str:
    autogen_context.imports.add(IMPORT)
    spec = op.spec
    args = [repr(spec.table), repr(spec.values)]
    if spec.where is not None:
        args.append(f"where={spec.where!r}")
    defaults = Backfill(spec.table, spec.values, spec.where, "id", 1000, 0.1, spec.table)
    for name in ("key", "batch_size", "pause", "name"):
        if getattr(spec, name) != getattr(defaults, name):
            args.append(f"{name}={getattr(spec, name)!r}")
    return f"backfill({', '.join(args)})"


def backfill_op(table: str, values: dict[str, str], *, where: str | None = None, key: str = "id",
                batch_size: int = 1000, pause: float = 0.1, name: str | None = None) -> BackfillOp:
    """The operation a revision's `backfill(...)` call runs, for a generated revision to render."""
    return BackfillOp(Backfill(table, dict(values), where, key, batch_size, float(pause), name or table), "")


def rename_in_two_releases(table: str, old: str, new: sa.Column[Any]) -> tuple[list[Any], list[Any]]:
    """A rename of `table`.`old` to `new` done without breaking running code: the operations of the first expand
    revision (the new column, nullable) and of the second (the backfill from the old column, rows written before
    the new code included). The old column's drop is the next release's contract revision."""
    column = new._copy()
    column.nullable = True
    # The names go into SQL expressions bare: the engines quote identifiers differently (MariaDB reads "x" as a
    # string), and the models' column names are plain identifiers.
    first = [ops.AddColumnOp(table, column)]
    second = [backfill_op(table, {new.name: old}, where=f"{new.name} IS NULL AND {old} IS NOT NULL")]
    return first, second
