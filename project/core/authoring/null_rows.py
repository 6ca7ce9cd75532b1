"""A nullable column made NOT NULL while rows hold NULL there (Django's "ask_not_null_alteration").

Setting NOT NULL fills nothing on any engine (a server default applies to new rows only): PostgreSQL and SQLite
refuse the change while a NULL is left, MariaDB too (strict mode). The questioner's one-off value goes into
those rows first, with an UPDATE written in SQLAlchemy's terms (`sa.table()`), so it runs on every engine and
renders offline. The downgrade only makes the column nullable again: the filled rows keep their value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import renderers
from alembic.operations import ops


class FillNullRowsOp(ops.MigrateOperation):
    """UPDATE table SET column = value WHERE column IS NULL; the value as quoted text, which each engine casts to
    the column's type (as the one-off defaults of NOT NULL columns added to tables with rows)."""

    def __init__(self, table: str, column: str, value: str):
        self.table, self.column, self.value = table, column, value


def fill_null_rows(container: ops.OpContainer, ask: Callable[[str, sa.Column[Any]], str | None]) -> None:
    """Before each table's alterations, fill the NULLs of the columns they make NOT NULL with the value `ask`
    answers (None: nothing is filled, and such rows make the migration fail until a data migration fills them)."""
    result: list[Any] = []
    for table_ops in container.ops:
        if isinstance(table_ops, ops.ModifyTableOps):
            for op in table_ops.ops:
                if isinstance(op, ops.AlterColumnOp) and op.modify_nullable is False and op.existing_nullable:
                    column: sa.Column[Any] = sa.Column(op.column_name, op.modify_type or op.existing_type)
                    value = ask(table_ops.table_name, column)
                    if value is not None:
                        result.append(FillNullRowsOp(table_ops.table_name, op.column_name, value))
        result.append(table_ops)
    container.ops = result


@renderers.dispatch_for(FillNullRowsOp)
def _render(autogen_context: Any, op: FillNullRowsOp) -> str:
    literal = "'" + op.value.replace("'", "''") + "'"
    return (f"op.execute(sa.table({op.table!r}, sa.column({op.column!r})).update()"
            f".where(sa.column({op.column!r}).is_(None)).values({{{op.column!r}: sa.literal_column({literal!r})}}))")
