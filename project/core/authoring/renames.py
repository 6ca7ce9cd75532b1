"""Renames the user confirms: autogenerate sees a dropped and an added column (or table) and would write a drop
and an add, losing the rows' values. Django asks "Did you rename ...?"; makemigrations does too
(project.core.authoring.questioner), and writes a rename for each yes."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import renderers
from alembic.operations import ops

from project.core.authoring.column_types import ENGINES, engine_type


class RenameColumnOp(ops.AlterColumnOp):
    """alter_column(new_column_name=...), with the reverse Alembic leaves out (its reverse keeps the name)."""

    def __init__(self, *args: Any, _reflected_type: Any = None, **kw: Any):
        super().__init__(*args, **kw)
        self.reflected_type = _reflected_type
        # Set by ask_column_renames when the user chose two phases (authoring.backfills.PhasedRename): the
        # rename is then written as expand and contract revisions, never as this operation.
        self.phased: Any = None

    def reverse(self) -> RenameColumnOp:
        return RenameColumnOp(
            self.table_name, self.modify_name, modify_name=self.column_name, existing_type=self.existing_type,
            existing_nullable=self.existing_nullable, existing_server_default=self.existing_server_default,
        )


class RenameTable(ops.RenameTableOp):
    """rename_table, with a reverse and a renderer (autogenerate has neither: it never finds renames)."""

    def reverse(self) -> RenameTable:
        return RenameTable(self.new_table_name, self.table_name, schema=self.schema)


@renderers.dispatch_for(RenameTable)
def _render_rename_table(autogen_context: Any, op: RenameTable) -> str:
    return f"op.rename_table({op.table_name!r}, {op.new_table_name!r})"


class RenamePrimaryKey(ops.MigrateOperation):
    """A renamed table's primary key takes the name the naming convention gives it under the new name."""

    def __init__(self, table_name: str, old_name: str, new_name: str, columns: list[str]):
        self.table_name, self.old_name, self.new_name, self.columns = table_name, old_name, new_name, columns

    def reverse(self) -> RenamePrimaryKey:
        return RenamePrimaryKey(self.table_name, self.new_name, self.old_name, self.columns)


@renderers.dispatch_for(RenamePrimaryKey)
def _render_rename_primary_key(autogen_context: Any, op: RenamePrimaryKey) -> list[str]:
    # PostgreSQL renames the constraint (and its index) in place; dropping it would fail while foreign keys refer
    # to it. SQLite keeps the name in the table's definition: the batch writes it anew. MySQL/MariaDB name every
    # primary key PRIMARY: nothing to do. Lines without indentation: Alembic's printer indents after each colon,
    # and each empty line closes a block.
    rename = f'ALTER TABLE "{op.table_name}" RENAME CONSTRAINT "{op.old_name}" TO "{op.new_name}"'
    return [
        'if op.get_bind().dialect.name == "postgresql":',
        f"op.execute({rename!r})",
        'elif op.get_bind().dialect.name == "sqlite":',
        f"with op.batch_alter_table({op.table_name!r}, recreate='always') as batch_op:",
        f"batch_op.drop_constraint({op.old_name!r}, type_='primary')",
        f"batch_op.create_primary_key({op.new_name!r}, {op.columns!r})",
        "",
        "",
    ]


# Type families a rename may stay within (Django asks only for fields of the same kind).
_FAMILIES = ("Boolean", "Integer", "Numeric", "String", "DateTime", "Date", "Time", "Interval", "LargeBinary",
             "JSON", "Uuid")


def type_family(type_: Any) -> str | None:
    """The family of what `type_` is on the engines (a TypeDecorator such as UTCDateTime is its DateTime, a
    variant what each engine gets): one family on all three, or None."""
    families = {_family(engine_type(type_, engine)) for engine in ENGINES}
    return families.pop() if len(families) == 1 else None


def _family(type_: Any) -> str | None:
    for family in _FAMILIES:
        if isinstance(type_, getattr(sa, family)):
            return {"Date": "DateTime", "Time": "DateTime"}.get(family, family)  # dates and times rename freely
    return None


def _same_family(old: Any, new: Any) -> bool:
    family = type_family(old.type)
    return family is not None and family == type_family(new.type)


def ask_table_renames(upgrade_ops: Any, questioner: Any) -> list[RenameTable]:
    """A dropped table and a created one with the same columns (same names, same type families)."""
    created = [op for op in upgrade_ops.ops if isinstance(op, ops.CreateTableOp)]
    dropped = {op.table_name: op for op in upgrade_ops.ops if isinstance(op, ops.DropTableOp)}
    renames = []
    for new in created:
        new_columns = {c.name: c for c in new.columns if isinstance(c, sa.Column)}
        for old_name, old in list(dropped.items()):
            old_columns = {c.name: c for c in old.to_table().columns}
            if old_columns.keys() != new_columns.keys():
                continue
            if all(_same_family(old_columns[n], new_columns[n]) for n in new_columns) and \
                    questioner.ask_rename_table(old_name, new.table_name):
                renames.append(RenameTable(old_name, new.table_name))
                del dropped[old_name]
                break
    return renames


def ask_column_renames(upgrade_ops: Any, questioner: Any, metadata: Any = None,
                       renamed_tables: frozenset[str] = frozenset()) -> list[RenameColumnOp]:
    """In each table, a dropped column and an added one of the same type family (not primary keys). Each rename
    confirmed is then asked "in one release or in two phases" when two phases can be written for it
    (authoring.backfills.phased_rename); the answer two sets the operation's `phased`."""
    from project.core.authoring.backfills import phased_rename

    renames = []
    for table_ops in upgrade_ops.ops:
        if not isinstance(table_ops, ops.ModifyTableOps):
            continue
        dropped = [op.to_column() for op in table_ops.ops if isinstance(op, ops.DropColumnOp)]
        dropped = [c for c in dropped if not c.primary_key]
        for add in (op for op in table_ops.ops if isinstance(op, ops.AddColumnOp)):
            new = add.column
            for old in dropped:
                if _same_family(old, new) and questioner.ask_rename(
                        table_ops.table_name, old.name, new.name, type(new.type).__name__):
                    rename = RenameColumnOp(
                        table_ops.table_name, old.name, modify_name=new.name, existing_type=new.type,
                        existing_nullable=old.nullable, existing_server_default=old.server_default or False,
                        _reflected_type=old.type,
                    )
                    phased = None if table_ops.table_name in renamed_tables else \
                        phased_rename(table_ops.table_name, old, new, metadata)
                    if phased is not None and questioner.ask_rename_in_two_phases(
                            table_ops.table_name, old.name, new.name):
                        rename.phased = phased
                    renames.append(rename)
                    dropped.remove(old)
                    break
    return renames


def replay(connection: Any, renames: list[Any]) -> None:
    """Apply confirmed renames to the scratch SQLite database (a throwaway copy of the history's schema), with
    Alembic's own statements, so that the scratch database's record of the history's column types follows."""
    from alembic.ddl import base as ddl

    for rename in renames:
        if isinstance(rename, RenameTable):
            connection.execute(ddl.RenameTable(rename.table_name, rename.new_table_name))
        else:
            connection.execute(ddl.ColumnName(rename.table_name, rename.column_name, rename.modify_name))


def prepend_renames(upgrade_ops: Any, table_renames: list[Any], column_renames: list[Any]) -> None:
    """Renames first: whatever else changed on the table (type, indexes) was compared after them. Column renames
    get a batch of their own: in one SQLite batch, a later operation cannot name the column by its new name."""
    by_table: dict[str, list[Any]] = {}
    for rename in column_renames:
        # When the comparison after the rename still saw a type change, the type before it is the old column's
        # (MySQL's CHANGE COLUMN restates the type); else the model's, so an ENUM stays an ENUM on MariaDB.
        if _type_changed(upgrade_ops, rename.table_name, rename.modify_name):
            rename.existing_type = rename.reflected_type
        by_table.setdefault(rename.table_name, []).append(rename)
    batches = [ops.ModifyTableOps(table, renames) for table, renames in by_table.items()]
    upgrade_ops.ops[:0] = [*table_renames, *batches]


def _type_changed(upgrade_ops: Any, table: str, column: str) -> bool:
    return any(isinstance(op, ops.AlterColumnOp) and op.table_name == table and op.column_name == column
               and op.modify_type is not None
               for table_ops in upgrade_ops.ops if isinstance(table_ops, ops.ModifyTableOps)
               for op in table_ops.ops)


def follow_renames(upgrade_ops: Any, connection: Any, metadata: Any, renames: list[Any]) -> None:
    """Names the naming convention derives from a table's or a column's name follow a confirmed rename. Alembic
    compares indexes and unique constraints by name (it drops and creates them anew), but foreign keys by their
    columns and primary keys not at all: a renamed table kept pk_<old name> and fk_<old name>_..., which a new
    table of the old name then collides with (PostgreSQL's primary key names are index names, MySQL's foreign key
    names are unique in the database). Each such foreign key is dropped and created under the model's name, in the
    table's batch (the ordering puts the drop before the index changes); each such primary key is renamed
    (RenamePrimaryKey). `connection`: the scratch database, the renames replayed."""
    if not renames:
        return
    renamed_tables = {r.new_table_name for r in renames if isinstance(r, RenameTable)}
    affected = renamed_tables | {r.table_name for r in renames if not isinstance(r, RenameTable)}
    scratch = sa.MetaData()
    scratch.reflect(connection)
    for name, model in sorted(metadata.tables.items()):
        reflected = scratch.tables.get(name)
        if reflected is None:
            continue
        changes: list[Any] = []
        for key in sorted(reflected.foreign_key_constraints, key=lambda k: str(k.name)):
            if name not in affected and key.referred_table.name not in renamed_tables:
                continue
            wanted = next((m for m in model.foreign_key_constraints if _key_signature(m) == _key_signature(key)),
                          None)
            if wanted is not None and wanted.name and key.name and str(wanted.name) != key.name:
                changes += [ops.DropConstraintOp.from_constraint(key), ops.CreateForeignKeyOp.from_constraint(wanted)]
        if changes:
            batch = next((o for o in upgrade_ops.ops if isinstance(o, ops.ModifyTableOps) and o.table_name == name
                          and not all(isinstance(i, RenameColumnOp) for i in o.ops)), None)
            if batch is None:
                upgrade_ops.ops.append(ops.ModifyTableOps(name, changes))
            else:
                batch.ops[:0] = changes[0::2]  # the drops first, the creations last
                batch.ops += changes[1::2]
        old_key, new_key = reflected.primary_key, model.primary_key
        if name in renamed_tables and old_key.name and new_key.name and str(new_key.name) != old_key.name:
            upgrade_ops.ops.append(RenamePrimaryKey(name, str(old_key.name), str(new_key.name),
                                                    [c.name for c in new_key.columns]))


def _key_signature(key: Any) -> tuple[Any, ...]:
    return tuple((element.parent.name, element.target_fullname) for element in key.elements)
