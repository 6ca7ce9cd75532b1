"""Writing backfills into revisions: the renderer of history.backfill's operation, and the operations of the
expand-backfill-contract recipes (docs/phases.md) that makemigrations' questioner can write.

A rename answered "in two phases" (PhasedRename) becomes, from one makemigrations run, an expand revision adding
the new column (nullable), relaxing the old one to nullable and keeping both in step with triggers
(history.column_sync), an expand revision backfilling the new column from the old (alone: check's Z303), and the
contract revision: the triggers and the old column dropped, the new column as the model has it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import renderers
from alembic.operations import ops

from project.core.authoring.column_types import engine_type
from project.core.history.backfill import Backfill, BackfillOp
from project.core.history.column_sync import DropColumnSyncOp, SyncColumnsOp

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


@renderers.dispatch_for(SyncColumnsOp)
def _render_sync(autogen_context: Any, op: SyncColumnsOp) -> str:
    autogen_context.imports.add("from project.core.history.column_sync import sync_columns")
    return f"sync_columns({op.table_name!r}, {op.old!r}, {op.new!r})"


@renderers.dispatch_for(DropColumnSyncOp)
def _render_drop_sync(autogen_context: Any, op: DropColumnSyncOp) -> str:
    autogen_context.imports.add("from project.core.history.column_sync import drop_column_sync")
    return f"drop_column_sync({op.table_name!r}, {op.old!r}, {op.new!r})"


class NothingToUndo(ops.MigrateOperation):
    """The downgrade of a backfill revision: its values go with the column it filled, which the revision before
    it adds (and its downgrade drops). Rendered as `pass`, with the silence of check's P107 (a downgrade doing
    nothing) and why."""

    def __init__(self, why: str) -> None:
        self.why = why


@renderers.dispatch_for(NothingToUndo)
def _render_nothing(autogen_context: Any, op: NothingToUndo) -> list[str]:
    return [f"# check: ignore-file[P107] {op.why}", "pass"]


@dataclass
class PhasedRename:
    """A column rename made in two phases (docs/phases.md): `old` (the history's column, as reflected from the
    scratch database) becomes `new` (the model's), walked by `key` (the table's one-column primary key)."""

    table: str
    old: Any
    new: Any
    key: str

    def expanded_column(self) -> Any:
        """The new column as the expand revision adds it: nullable (the old code's INSERTs do not fill it on
        SQLite, whose triggers run after the row is written); the contract revision gives it the model's NOT
        NULL."""
        # A plain column: the model's index, unique constraint and foreign key are compared after the expand
        # revisions, so the contract revision creates them (Alembic's add_column would create them unwritten).
        return sa.Column(self.new.name, self.new.type, nullable=True, comment=self.new.comment)

    def expand_ops(self) -> list[Any]:
        """The new column, the old one made nullable (the new code no longer writes it; SQLite's triggers fill it
        only after the INSERT), then the triggers (after the batch: a SQLite rebuild drops a table's triggers)."""
        batch: list[Any] = [ops.AddColumnOp(self.table, self.expanded_column())]
        if not self.old.nullable:
            batch.append(ops.AlterColumnOp(self.table, self.old.name, modify_nullable=True, existing_nullable=False,
                                           existing_type=self.old.type, existing_server_default=False,
                                           existing_comment=self.old.comment))
        return [ops.ModifyTableOps(self.table, batch), SyncColumnsOp(self.table, self.old.name, self.new.name)]

    def backfill_op(self, name: str | None = None) -> BackfillOp:
        """The rows written before the triggers: the new column from the old. (The names go into SQL expressions
        bare: the engines quote identifiers differently, MariaDB reads "x" as a string, and the models' column
        names are plain identifiers.)"""
        old, new = self.old.name, self.new.name
        return backfill_op(self.table, {new: old}, where=f"{new} IS NULL AND {old} IS NOT NULL", key=self.key,
                           name=name)

    def catch_up_sql(self) -> str:
        """The contract revision's downgrade adds the old column back empty: the expand revision's downgrade
        then needs its values (NOT NULL again, and the old code reads it)."""
        return f"UPDATE {self.table} SET {self.old.name} = {self.new.name}"


def phased_rename(table: str, old: Any, new: Any, metadata: Any) -> PhasedRename | None:
    """The two phases of a rename of `table`.`old` to `new`, when they can be written: the model's table has a
    one-column primary key for the backfill to walk (and a rowid on SQLite), and neither column has a server
    default (an INSERT naming one column would get the other's default, which the triggers cannot tell from a
    value written)."""
    model = metadata.tables.get(table) if metadata is not None else None
    if model is None or len(model.primary_key.columns) != 1:
        return None
    if model.dialect_options["sqlite"].get("with_rowid") is False:  # SQLite's triggers find the row by rowid
        return None
    if old.server_default is not None or new.server_default is not None:
        return None
    if any(isinstance(engine_type(column.type, "postgresql"), sa.Enum) for column in (old, new)):
        return None  # a named type: the expand revision would have to create it (not written yet)
    if any(_compiled(old.type, name) != _compiled(new.type, name) for name in ("postgresql", "mysql", "sqlite")):
        # The triggers copy each write across, both ways: a value one column takes may not fit the other (a
        # String(100) renamed to a Text: the new code's long value failed in the copy, and so did its request).
        # A rename and a type change are two steps: the rename, then the type change's own recipe.
        return None
    return PhasedRename(table, old, new, next(iter(model.primary_key.columns)).name)


def _compiled(type_: Any, dialect: str) -> str | None:
    """The column type's DDL on `dialect` (its variant there), None where it has none."""
    from sqlalchemy.dialects import registry

    try:
        return str(engine_type(type_, dialect).compile(dialect=registry.load(dialect)()))
    except Exception:  # noqa: BLE001 - a type the dialect cannot render: not the same as one it can
        return None
