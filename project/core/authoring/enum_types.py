"""PostgreSQL's named ENUM types in generated revisions: created before the column that needs them, dropped
with the last column that used them.

Alembic leaves the type to the user (alembic #886, #1612): `create_table` creates it, but `add_column` does not,
and neither `drop_table` nor `drop_column` drops it, so a downgrade leaves the type behind and the next upgrade
fails with "type ... already exists". The operations added here render as
`sa.Enum(..., name=...).create(op.get_bind(), checkfirst=True)` and `sa.Enum(name=...).drop(op.get_bind(),
checkfirst=True)`, which SQLAlchemy turns into nothing on engines without named types (SQLite, MariaDB) and into
CREATE TYPE / DROP TYPE, also offline, on PostgreSQL. A table created with a type that exists already (an earlier
revision's) gets it as a variant PostgreSQL does not create (`create_type=False`): create_table does not check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import renderers
from alembic.operations import ops


class CreateEnumTypeOp(ops.MigrateOperation):
    def __init__(self, enum: sa.Enum):
        self.enum = enum

    def reverse(self) -> DropEnumTypeOp:
        return DropEnumTypeOp(self.enum)


class DropEnumTypeOp(ops.MigrateOperation):
    def __init__(self, enum: sa.Enum):
        self.enum = enum

    def reverse(self) -> CreateEnumTypeOp:
        return CreateEnumTypeOp(self.enum)


@renderers.dispatch_for(CreateEnumTypeOp)
def _render_create(autogen_context: Any, op: CreateEnumTypeOp) -> str:
    values = ", ".join(repr(value) for value in op.enum.enums)
    return f"sa.Enum({values}, name={op.enum.name!r}).create(op.get_bind(), checkfirst=True)"


@renderers.dispatch_for(DropEnumTypeOp)
def _render_drop(autogen_context: Any, op: DropEnumTypeOp) -> str:
    return f"sa.Enum(name={op.enum.name!r}).drop(op.get_bind(), checkfirst=True)"


def named_enum(type_: Any) -> sa.Enum | None:
    """The type when it is a named native enum (a PostgreSQL TYPE of its own), else None."""
    if isinstance(type_, sa.Enum) and type_.native_enum and type_.name:
        return type_
    return None


def enum_names(columns: Iterable[Any]) -> set[str]:
    return {enum.name for column in columns if (enum := named_enum(column.type)) is not None and enum.name}


def created_columns(upgrade_ops: ops.UpgradeOps) -> set[tuple[str, str]]:
    """(table, column) of every column the upgrade creates, by create_table or add_column."""
    created = set()
    for op in upgrade_ops.ops:
        if isinstance(op, ops.CreateTableOp):
            created |= {(op.table_name, c.name) for c in op.columns if isinstance(c, sa.Column)}
        elif isinstance(op, ops.ModifyTableOps):
            created |= {(op.table_name, o.column.name) for o in op.ops if isinstance(o, ops.AddColumnOp)}
    return created


def add_type_operations(container: ops.OpContainer, in_use: set[str]) -> None:
    """Insert the type's create before each add_column of a named enum, and its drop, once every drop_table /
    drop_column has run, for the types no column uses any more. `in_use`: the enum names that columns still
    use once the operations have run (their types must stay)."""
    result: list[Any] = []
    gone: list[Any] = []
    for op in container.ops:
        if isinstance(op, ops.ModifyTableOps):
            added = [o.column for o in op.ops if isinstance(o, ops.AddColumnOp)]
            gone += [o.to_column() for o in op.ops if isinstance(o, ops.DropColumnOp)]
            result.extend(CreateEnumTypeOp(e) for e in _unique_enums(added))
        elif isinstance(op, ops.DropTableOp):
            gone += list(op.to_table().columns)
        # create_table creates its enum types itself (and a create before it would make it fail).
        result.append(op)
    result.extend(DropEnumTypeOp(e) for e in _unique_enums(gone) if e.name not in in_use)
    container.ops = result


class CreateTableKeepingTypes(ops.CreateTableOp):
    """create_table, with the named enum types in `existing` given as a variant that PostgreSQL does not create.
    Set on the Table each time it is made: Alembic copies a column it has already put in a Table, and a copied
    Enum loses its variants."""

    existing: set[str] = set()

    def to_table(self, migration_context: Any = None) -> sa.Table:
        from sqlalchemy.dialects import postgresql

        table = super().to_table(migration_context)
        for column in table.columns:
            enum = named_enum(column.type)
            if enum is not None and enum.name in self.existing:
                kept = postgresql.ENUM(*enum.enums, name=enum.name, create_type=False)
                column.type = sa.Enum(*enum.enums, name=enum.name).with_variant(kept, "postgresql")
        return table


def existing_types_not_created(container: ops.OpContainer, existing: Callable[[], set[str]]) -> None:
    """A created table's columns of a named enum type that already exists (`existing()`: the types in use when the
    operations start; they stay until the end) leave the type be: create_table creates its enum types without
    checking (Alembic passes checkfirst=False), and failed with 'type ... already exists'."""
    names: set[str] | None = None
    for index, op in enumerate(container.ops):
        if not isinstance(op, ops.CreateTableOp) or not any(
                isinstance(c, sa.Column) and named_enum(c.type) is not None for c in op.columns):
            continue
        names = existing() if names is None else names
        used = {enum.name for c in op.columns
                if isinstance(c, sa.Column) and (enum := named_enum(c.type)) is not None and enum.name}
        if used & names:
            kept = CreateTableKeepingTypes(op.table_name, op.columns, schema=op.schema, if_not_exists=op.if_not_exists,
                                           _namespace_metadata=op._namespace_metadata,
                                           _constraints_included=op._constraints_included, info=op.info,
                                           comment=op.comment, prefixes=op.prefixes, **op.kw)
            kept.existing = used & names
            container.ops[index] = kept


def _unique_enums(columns: Iterable[Any]) -> list[sa.Enum]:
    seen: dict[str, sa.Enum] = {}
    for column in columns:
        enum = named_enum(column.type)
        if enum is not None and enum.name:
            seen.setdefault(enum.name, enum)
    return list(seen.values())


def restore_enum_types(upgrade_ops: ops.UpgradeOps, history: dict[tuple[str, str], sa.Enum]) -> None:
    """Give dropped columns and tables the enum types the history gave them (the scratch SQLite database shows
    VARCHAR): the upgrade can then drop the PostgreSQL type, and the downgrade brings the column back as it was."""
    for index, op in enumerate(upgrade_ops.ops):
        if isinstance(op, ops.DropTableOp) and any(table == op.table_name for table, _ in history):
            table = op.to_table()
            for column in table.columns:
                column.type = history.get((op.table_name, column.name), column.type)
            upgrade_ops.ops[index] = ops.DropTableOp.from_table(table)
        elif isinstance(op, ops.ModifyTableOps):
            for inner in op.ops:
                if isinstance(inner, ops.DropColumnOp) and (op.table_name, inner.column_name) in history:
                    inner.to_column().type = history[(op.table_name, inner.column_name)]


def drops_anything(upgrade_ops: ops.UpgradeOps) -> bool:
    return any(isinstance(op, ops.DropTableOp) or (
        isinstance(op, ops.ModifyTableOps) and any(isinstance(o, ops.DropColumnOp) for o in op.ops))
        for op in upgrade_ops.ops)


# --- the values of a named enum -------------------------------------------------------------------------------
#
# A named enum's values changed in the models: autogenerate writes an alter_column from the old Enum to the new
# one. MySQL/MariaDB change the column (MODIFY ... ENUM(...)), SQLite the VARCHAR; on PostgreSQL the column's type
# is the same TYPE by name, so ALTER COLUMN ... TYPE changes nothing and the new value is refused when the app
# writes it. There the TYPE itself changes: values only added, ALTER TYPE ... ADD VALUE (inside the revision's
# transaction, PostgreSQL 12 or later); values removed or reordered, the type is rebuilt and every column using it
# cast to the new one (rows holding a removed value make the cast fail, and the revision rolls back).


class AlterEnumValuesOp(ops.MigrateOperation):
    """The columns of one named enum whose values change: on PostgreSQL the TYPE, elsewhere the columns."""

    def __init__(self, old: sa.Enum, new: sa.Enum, columns: list[ops.ModifyTableOps]):
        self.old, self.new, self.columns = old, new, columns

    def reverse(self) -> AlterEnumValuesOp:
        return AlterEnumValuesOp(self.new, self.old, [table.reverse() for table in self.columns])


def _values_changed(op: Any) -> tuple[sa.Enum, sa.Enum] | None:
    """(old, new) when `op` changes only a column's type, from one named enum to the same name with other values."""
    if not isinstance(op, ops.AlterColumnOp) or op.modify_nullable is not None or op.modify_server_default \
            is not False or op.modify_name is not None or op.modify_comment is not False:
        return None
    old, new = named_enum(op.existing_type), named_enum(op.modify_type)
    if old is None or new is None or old.name != new.name or list(old.enums) == list(new.enums):
        return None
    return old, new


def alter_enum_values(container: ops.OpContainer) -> None:
    """Gather the alter_columns that only change a named enum's values into one AlterEnumValuesOp per type, where
    the first of them stood."""
    result: list[Any] = []
    by_name: dict[str, AlterEnumValuesOp] = {}
    for op in container.ops:
        if not isinstance(op, ops.ModifyTableOps):
            result.append(op)
            continue
        kept = []
        for inner in op.ops:
            changed = _values_changed(inner)
            if changed is None:
                kept.append(inner)
                continue
            old, new = changed
            table = ops.ModifyTableOps(op.table_name, [inner], schema=op.schema)
            name = str(new.name)
            if name in by_name:
                by_name[name].columns.append(table)
            else:
                by_name[name] = AlterEnumValuesOp(old, new, [table])
                result.append(by_name[name])
        if kept:
            op.ops = kept
            result.append(op)
    container.ops = result


@renderers.dispatch_for(AlterEnumValuesOp)
def _render_alter_values(autogen_context: Any, op: AlterEnumValuesOp) -> list[str]:
    from alembic.autogenerate.render import render_op

    lines = ['if op.get_context().dialect.name == "postgresql":',
             f"# {op.new.name} is a TYPE of its own on PostgreSQL: its values change there, not the columns'"]
    lines += [f"op.execute({statement!r})" for statement in _postgresql_statements(op)]
    lines.append("else:")
    for table in op.columns:
        lines += render_op(autogen_context, table)
    return [*lines, ""]


def _postgresql_statements(op: AlterEnumValuesOp) -> list[str]:
    from sqlalchemy.dialects import postgresql

    quote = postgresql.dialect().identifier_preparer.quote  # type: ignore[no-untyped-call]
    name, old, new = quote(str(op.new.name)), list(op.old.enums), list(op.new.enums)

    def literal(value: str) -> str:
        return "'" + value.replace("'", "''") + "'"

    if [value for value in new if value in old] == old:  # values only added: the existing ones stay in order
        statements, present = [], set(old)
        for index, value in enumerate(new):
            if value in present:
                continue
            following = next((v for v in new[index + 1:] if v in present), None)
            where = f" BEFORE {literal(following)}" if following is not None else ""
            statements.append(f"ALTER TYPE {name} ADD VALUE IF NOT EXISTS {literal(value)}{where}")
            present.add(value)
        return statements
    previous = quote(f"{op.new.name}_old")
    statements = [f"ALTER TYPE {name} RENAME TO {previous}",
                  f"CREATE TYPE {name} AS ENUM ({', '.join(literal(v) for v in new)})"]
    for table in op.columns:
        for alter in table.ops:
            assert isinstance(alter, ops.AlterColumnOp)
            column = f"ALTER TABLE {quote(table.table_name)} ALTER COLUMN {quote(alter.column_name)}"
            default = _default_sql(alter.existing_server_default)
            if default is not None:  # the default is of the old type: it goes, and comes back of the new one
                statements.append(f"{column} DROP DEFAULT")
            statements.append(f"{column} TYPE {name} USING {quote(alter.column_name)}::text::{name}")
            if default is not None:
                statements.append(f"{column} SET DEFAULT {default}")
    return [*statements, f"DROP TYPE {previous}"]


def _default_sql(default: Any) -> str | None:
    """A server default as SQL: a text clause as written, a plain string as a literal."""
    if default is None or default is False:
        return None
    arg = getattr(default, "arg", default)
    if isinstance(arg, str):
        return "'" + arg.replace("'", "''") + "'"
    return str(getattr(arg, "text", arg))
