"""Column types PostgreSQL converts only when told how.

`ALTER COLUMN ... TYPE` converts the rows with the assignment cast from the old type to the new one. PostgreSQL
has one between numbers, to strings, from date to timestamp; not from a string to a number, a boolean, a date, a
UUID or JSON, nor between booleans and integers: there it refuses ("column ... cannot be cast automatically to
type integer", with the hint to give USING). MariaDB and SQLite convert such values themselves. So the generated
`alter_column` gets `postgresql_using="col::TYPE"` (an explicit cast, which every such pair has) where PostgreSQL
needs it, in the upgrade and the downgrade alike; Alembic passes it on PostgreSQL only.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import renderers
from alembic.autogenerate.render import render_op_text
from alembic.operations import ops

from project.core.authoring.column_types import dialects, engine_type


class CastingAlterColumnOp(ops.AlterColumnOp):
    """An alter_column rendered with its postgresql_using (Alembic's renderer writes only the keywords it knows)."""

    @classmethod
    def of(cls, op: ops.AlterColumnOp, using: str) -> CastingAlterColumnOp:
        casting = cls.__new__(cls)
        casting.__dict__.update(op.__dict__)
        casting.kw = {**op.kw, "postgresql_using": using}
        return casting


@renderers.dispatch_for(CastingAlterColumnOp)
def _render(autogen_context: Any, op: CastingAlterColumnOp) -> str:
    plain = ops.AlterColumnOp.__new__(ops.AlterColumnOp)
    plain.__dict__.update(op.__dict__)
    plain.kw = {k: v for k, v in op.kw.items() if k != "postgresql_using"}
    text = render_op_text(autogen_context, plain)
    return f"{text[:-1]},\n{' ' * 11}postgresql_using={op.kw['postgresql_using']!r})"


def add_casts(container: ops.OpContainer) -> None:
    """Give each alter_column in `container` whose type change PostgreSQL cannot do by itself its USING cast."""
    for table_ops in container.ops:
        if not isinstance(table_ops, ops.ModifyTableOps):
            continue
        for index, op in enumerate(table_ops.ops):
            if isinstance(op, ops.AlterColumnOp) and op.modify_type is not None and op.existing_type is not None \
                    and needs_cast(op.existing_type, op.modify_type):
                postgresql = dialects()["postgresql"]
                column = postgresql.identifier_preparer.quote(op.modify_name or op.column_name)
                target = engine_type(op.modify_type, "postgresql").compile(dialect=postgresql)
                table_ops.ops[index] = CastingAlterColumnOp.of(op, f"{column}::{target}")


def needs_cast(old: Any, new: Any) -> bool:
    """Whether PostgreSQL lacks an assignment cast from `old` to `new` (as they are there)."""
    before, after = _family(engine_type(old, "postgresql")), _family(engine_type(new, "postgresql"))
    if before == after or after == "string":  # every type converts to a string by itself
        return False
    return (before, after) not in {("integer", "numeric"), ("numeric", "integer"), ("date", "timestamp"),
                                   ("timestamp", "date"), ("timestamp", "time")}


def _family(type_: Any) -> str:
    if isinstance(type_, sa.Enum) and type_.native_enum and type_.name:
        return f"enum {type_.name}"  # a TYPE of its own: another name is another type
    for kind, name in ((sa.Boolean, "boolean"), (sa.Integer, "integer"), (sa.Numeric, "numeric"),
                       (sa.DateTime, "timestamp"), (sa.Date, "date"), (sa.Time, "time"), (sa.Interval, "interval"),
                       (sa.JSON, "json"), (sa.Uuid, "uuid"), (sa.LargeBinary, "binary"), (sa.String, "string")):
        if isinstance(type_, kind):
            return name
    return type(type_).__name__.lower()
