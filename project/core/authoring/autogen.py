"""Autogenerate against the history itself: the models compared with a scratch SQLite database
built by replaying the version files (history.scratch). Shared by makemigrations and check; needs no server."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def target_metadata(settings: Any) -> Any:
    """The application's MetaData, named by the TARGET_METADATA setting ("package.module:Base.metadata")."""
    from project.core.conf import ImproperlyConfigured, import_string, shared_settings

    path = (settings or shared_settings()).get("TARGET_METADATA")
    if not path:
        raise ImproperlyConfigured(
            "TARGET_METADATA is not set: name the models' MetaData in your settings, "
            "e.g. TARGET_METADATA = \"myapp.models:Base.metadata\"."
        )
    return import_string(path)


def autogenerate_ops(connection: Any, settings: Any) -> Any:
    """The upgrade operations for the difference between the models and the scratch database; asks nothing."""
    return autogenerate_script(connection, settings).upgrade_ops


@dataclass
class Generated:
    """The operations of a revision to write, upgrade and downgrade, after the questions, and how to render them."""

    upgrade_ops: Any
    downgrade_ops: Any
    context: Any  # the MigrationContext autogenerate compared on (the scratch database's)
    types: Any  # project.core.authoring.column_types.ModelTypes: Alembic's render_item
    # Revisions to write before this one (renames answered "in two phases"): (message, upgrade, downgrade).
    expand_revisions: list[tuple[str, Any, Any]] = field(default_factory=list)
    message: str | None = None  # this revision's message when the user gives none: None, from its operations

    def process_revision_directives(self, context: Any, revision: Any, directives: list[Any]) -> None:
        """Alembic's hook: the file gets these operations instead of env.py's plain autogenerate."""
        directives[0].upgrade_ops = self.upgrade_ops
        directives[0].downgrade_ops = self.downgrade_ops

    def configure_options(self) -> dict[str, Any]:
        """What `alembic revision --autogenerate` needs (through env.py's configure) to write this revision."""
        return {"process_revision_directives": self.process_revision_directives,
                "render_item": self.types.render_item}

    def render_upgrade(self) -> str:
        """The upgrade's code, rendered as the file renders it (the same dialect and hooks): --dry-run."""
        return self.render(self.upgrade_ops)

    def render(self, ops: Any) -> str:
        """`ops` rendered as the file renders them (the same dialect and hooks)."""
        from alembic.autogenerate import render_python_code

        return render_python_code(ops, render_as_batch=True, render_item=self.types.render_item,
                                  migration_context=self.context)


def autogenerate_script(connection: Any, settings: Any, questioner: Any = None) -> Generated:
    """Autogenerate, then rewrite what plain autogenerate gets wrong on some engine.

    With a questioner (makemigrations): renames the user confirms, NOT NULL columns filled with a one-off
    default, and names checked first. Always: the models compared with the types and defaults the history gave
    (not what SQLite reflects, project.core.history.scratch) on every engine (column_types); dropped columns and
    tables re-created by the downgrade as the history made them, NOT NULL ones filled; named enum types created
    and dropped; long names cut the same way on every engine; an order every engine accepts (ordering).
    Renames are replayed on the scratch database (a throwaway copy) and the models compared again, so that
    alembic itself works out what else changed on a renamed table or column.
    """
    from alembic.autogenerate import produce_migrations
    from alembic.runtime.migration import MigrationContext

    from project.core.authoring import constraint_names, ordering
    from project.core.authoring.column_types import ModelTypes
    from project.core.authoring.questioner import MigrationQuestioner
    from project.core.authoring.renames import follow_renames

    metadata = target_metadata(settings)
    if questioner is not None:
        constraint_names.refuse_bad_names(metadata)
    types = ModelTypes(metadata)
    context = MigrationContext.configure(connection, opts={
        "compare_type": types.compare_type, "render_as_batch": True, "render_item": types.render_item})
    try:
        upgrade_ops, renames, phased = _diff_after_renames(
            connection, lambda: produce_migrations(context, metadata), questioner, metadata)
        follow_renames(upgrade_ops, connection, metadata, renames)
        constraint_names.ignore_cut_names(upgrade_ops)
        restore_history_defaults(upgrade_ops, connection)
        restate_defaults_of_retyped(upgrade_ops, metadata)
        if questioner is not None:
            fill_not_null_columns(upgrade_ops, questioner.ask_not_null_addition)
        _restore_dropped_enums(upgrade_ops, settings, renames)
        constraint_names.shorten_names(upgrade_ops)
        ordering.arrange(upgrade_ops)
        downgrade_ops = upgrade_ops.reverse()
        fill_not_null_columns(downgrade_ops, (questioner or MigrationQuestioner()).ask_not_null_restore)
        if questioner is not None:
            from project.core.authoring.null_rows import fill_null_rows

            # The new column of a phased rename of a NOT NULL column holds no NULL: the backfill and the
            # triggers gave every row the old column's value. Nothing to ask.
            filled = {(r.table, r.new.name) for r in phased if not r.old.nullable}
            ask = questioner.ask_not_null_alteration
            fill_null_rows(upgrade_ops, lambda table, column: None if (table, column.name) in filled
                           else ask(table, column))
        for container, tables_after in ((upgrade_ops, lambda: dict(metadata.tables)),
                                        (downgrade_ops, lambda: _reflected_tables(connection))):
            ordering.drop_with_tables(container)
            ordering.foreign_keys_first(container, tables_after)
        _add_enum_type_operations(metadata, upgrade_ops, downgrade_ops)
        _existing_enum_types_not_created(settings, metadata, upgrade_ops, downgrade_ops)
        from project.core.authoring.enum_types import alter_enum_values
        from project.core.authoring.type_casts import add_casts

        for container in (upgrade_ops, downgrade_ops):
            alter_enum_values(container)
            add_casts(container)
        generated = Generated(upgrade_ops, downgrade_ops, context, types)
        if phased:
            generated.expand_revisions = _phased_revisions(phased, upgrade_ops, downgrade_ops)
            generated.message = "drop " + ", ".join(f"{r.table}.{r.old.name}" for r in phased) + " renamed to " + \
                ", ".join(r.new.name for r in phased)
        return generated
    finally:
        if connection.in_transaction():
            connection.rollback()


def _reflected_tables(connection: Any) -> dict[str, Any]:
    """The scratch database's tables (the history's schema, renames replayed): what the downgrade goes back to."""
    import sqlalchemy as sa

    reflected = sa.MetaData()
    reflected.reflect(connection)
    return dict(reflected.tables)


def _diff_after_renames(connection: Any, diff: Any, questioner: Any,
                        metadata: Any) -> tuple[Any, list[Any], list[Any]]:
    """The upgrade operations, with the renames the user confirmed (tables first, then columns, as Django asks).
    Each confirmed set is replayed on the scratch database and the models compared again. A column rename
    answered "in two phases" is replayed as its expand revision (the new column added beside the old one, the
    old made nullable): what the models are then compared with is the schema after the expand revisions, so the
    operations left are the contract revision's (the old column dropped, the new one made as the model has it).
    Returns the operations, the renames made as renames, and the PhasedRenames."""
    from project.core.authoring.renames import ask_column_renames, ask_table_renames, prepend_renames, replay

    upgrade_ops = diff().upgrade_ops
    if questioner is None:
        return upgrade_ops, [], []
    table_renames = ask_table_renames(upgrade_ops, questioner)
    if table_renames:
        replay(connection, table_renames)
        upgrade_ops = diff().upgrade_ops
    column_renames = ask_column_renames(upgrade_ops, questioner, metadata,
                                        frozenset(r.new_table_name for r in table_renames))
    phased = [r.phased for r in column_renames if r.phased is not None]
    column_renames = [r for r in column_renames if r.phased is None]
    if column_renames or phased:
        replay(connection, column_renames)
        _replay_expand(connection, phased)
        upgrade_ops = diff().upgrade_ops
    prepend_renames(upgrade_ops, table_renames, column_renames)
    return upgrade_ops, [*table_renames, *column_renames], phased


def _replay_expand(connection: Any, phased: list[Any]) -> None:
    """The schema changes of the phased renames' expand revisions, on the scratch database (a throwaway copy),
    with Alembic's own operations (a SQLite batch for the old column made nullable)."""
    if not phased:
        return
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    operations = Operations(MigrationContext.configure(connection))
    for rename in phased:
        operations.add_column(rename.table, rename.expanded_column())
        if not rename.old.nullable:
            with operations.batch_alter_table(rename.table) as batch:
                batch.alter_column(rename.old.name, nullable=True, existing_type=rename.old.type,
                                   existing_nullable=False)


def _phased_revisions(phased: list[Any], upgrade_ops: Any, downgrade_ops: Any) -> list[tuple[str, Any, Any]]:
    """The expand revisions of the phased renames (before the revision of `upgrade_ops`), and what the contract
    revision adds: the triggers dropped first, and in its downgrade, the old column's values and the triggers
    back once the old column is."""
    if not phased:
        return []
    from alembic.operations import ops

    from project.core.authoring.backfills import NothingToUndo
    from project.core.history.column_sync import DropColumnSyncOp, SyncColumnsOp

    expand = ops.UpgradeOps(ops=[op for rename in phased for op in rename.expand_ops()])
    tables = [rename.table for rename in phased]
    backfills = ops.UpgradeOps(ops=[
        rename.backfill_op(f"{rename.table}.{rename.new.name}" if tables.count(rename.table) > 1 else None)
        for rename in phased])
    upgrade_ops.ops[:0] = [DropColumnSyncOp(r.table, r.old.name, r.new.name) for r in phased]
    for rename in phased:
        downgrade_ops.ops += [ops.ExecuteSQLOp(rename.catch_up_sql()),
                              SyncColumnsOp(rename.table, rename.old.name, rename.new.name)]
    what = ", ".join(f"{r.table}.{r.new.name}" for r in phased)
    sources = ", ".join(f"{r.table}.{r.old.name}" for r in phased)
    return [(f"add {what} kept in step with {sources}", expand, expand.reverse()),
            (f"backfill {what} from {sources}", backfills, ops.DowngradeOps(ops=[NothingToUndo(
                "nothing to undo: the revision before drops the column this one fills")]))]


def _restore_dropped_enums(upgrade_ops: Any, settings: Any, renames: list[Any]) -> None:
    """Dropped columns get back the enum type the version files gave them (only read when something is dropped)."""
    from project.core.authoring import enum_types

    if enum_types.drops_anything(upgrade_ops):
        from project.core.history.enums import enum_columns

        enum_types.restore_enum_types(upgrade_ops, renamed(enum_columns(settings), renames))


def _add_enum_type_operations(metadata: Any, upgrade_ops: Any, downgrade_ops: Any) -> None:
    """Types stay while a column uses them: after the upgrade, the models' columns; after the downgrade, the
    models' columns the upgrade did not create."""
    from project.core.authoring import enum_types

    columns = [(table.name, column) for table in metadata.tables.values() for column in table.columns]
    created = enum_types.created_columns(upgrade_ops)
    enum_types.add_type_operations(upgrade_ops, enum_types.enum_names(c for _, c in columns))
    enum_types.add_type_operations(
        downgrade_ops, enum_types.enum_names(c for t, c in columns if (t, c.name) not in created))


def _existing_enum_types_not_created(settings: Any, metadata: Any, upgrade_ops: Any, downgrade_ops: Any) -> None:
    """Tables created with an enum type that exists already leave it be: in the upgrade, the types the history's
    columns use (read only when a created table has a named enum); in the downgrade, the models' types."""
    from project.core.authoring import enum_types

    def history() -> set[str]:
        from project.core.history.enums import enum_columns

        return {enum.name for enum in enum_columns(settings).values() if enum.name}

    enum_types.existing_types_not_created(upgrade_ops, history)
    enum_types.existing_types_not_created(downgrade_ops, lambda: enum_types.enum_names(
        column for table in metadata.tables.values() for column in table.columns))


def renamed(columns: dict[tuple[str, str], Any], renames: list[Any]) -> dict[tuple[str, str], Any]:
    """(table, column) keys as they are after the confirmed renames (tables first, then columns)."""
    from project.core.authoring.renames import RenameTable

    result = dict(columns)
    for rename in renames:
        if isinstance(rename, RenameTable):
            result = {(rename.new_table_name if t == rename.table_name else t, c): v for (t, c), v in result.items()}
        elif (rename.table_name, rename.column_name) in result:
            result[(rename.table_name, rename.modify_name)] = result.pop((rename.table_name, rename.column_name))
    return result


# --- what the history gave dropped columns --------------------------------------------------------------------

def restore_history_defaults(upgrade_ops: Any, connection: Any) -> None:
    """Dropped columns and tables get back the server defaults the history gave them (reflected from SQLite,
    `sa.false()` reads as the text 0, which PostgreSQL refuses for a boolean): their downgrade re-creates them
    as they were. So do an altered column's existing default (MySQL restates it, the downgrade sets it back)."""
    import sqlalchemy as sa
    from alembic.operations import ops

    from project.core.authoring.renames import RenameColumnOp
    from project.core.history.scratch import HISTORY_DEFAULT, history_default

    def restore(column: Any) -> None:
        if HISTORY_DEFAULT in column.info and isinstance(column.server_default, sa.DefaultClause) \
                and column.server_default.reflected:
            column.server_default = sa.DefaultClause(column.info[HISTORY_DEFAULT])

    for index, op in enumerate(upgrade_ops.ops):
        if isinstance(op, ops.DropTableOp):
            table = op.to_table()
            for column in table.columns:
                restore(column)
            upgrade_ops.ops[index] = ops.DropTableOp.from_table(table)
        elif isinstance(op, ops.ModifyTableOps):
            for inner in op.ops:
                if isinstance(inner, ops.DropColumnOp):
                    restore(inner.to_column())
                elif isinstance(inner, ops.AlterColumnOp) and inner.existing_server_default:
                    # The scratch database has the confirmed renames replayed: a renamed column is at its new name.
                    name = (inner.modify_name if isinstance(inner, RenameColumnOp) else None) or inner.column_name
                    inner.existing_server_default = history_default(
                        connection, op.table_name, name, inner.existing_server_default)


def restate_defaults_of_retyped(upgrade_ops: Any, metadata: Any) -> None:
    """A column whose type changes gets its server default set again with the new type (and the downgrade the old
    one with the old type): PostgreSQL keeps the default's expression through ALTER COLUMN TYPE, so a date column
    retyped to timestamptz kept '2020-01-01'::date, read in the session's time zone, where the models give a
    timestamptz. MySQL restates the default anyway; SQLite rebuilds the table."""
    from alembic.operations import ops

    from project.core.authoring.enum_types import named_enum

    def same_type_by_name(old: Any, new: Any) -> bool:
        """A named enum whose values change stays the same TYPE on PostgreSQL (enum_types.alter_enum_values)."""
        before, after = named_enum(old), named_enum(new)
        return before is not None and after is not None and before.name == after.name

    for table_ops in upgrade_ops.ops:
        if not isinstance(table_ops, ops.ModifyTableOps) or table_ops.table_name not in metadata.tables:
            continue
        columns = metadata.tables[table_ops.table_name].c
        for op in table_ops.ops:
            if isinstance(op, ops.AlterColumnOp) and op.modify_type is not None and op.modify_name is None \
                    and op.modify_server_default is False and op.existing_server_default \
                    and op.column_name in columns and columns[op.column_name].server_default is not None \
                    and not same_type_by_name(op.existing_type, op.modify_type):
                op.modify_server_default = columns[op.column_name].server_default


# --- NOT NULL columns added to tables with rows ----------------------------------------------------------------

def fill_not_null_columns(container: Any, ask: Any) -> None:
    """A NOT NULL column without a server default, added to an existing table, gets a one-off default from
    `ask(table, column)` (the questioner's: the user's answer; for a downgrade that adds back a dropped column,
    without a terminal, the type's empty value): added with it as server default (every engine fills the
    existing rows), which a second batch then drops, so the column ends NOT NULL with no default, as in the
    model. Two batches, because a SQLite batch that rebuilds the table copies the rows before the default could
    fill them. `ask` may answer None: the column is added as it is."""
    import sqlalchemy as sa
    from alembic.operations import ops

    result: list[Any] = []
    for table_ops in container.ops:
        result.append(table_ops)
        if not isinstance(table_ops, ops.ModifyTableOps):
            continue
        drops = []
        for index, op in enumerate(table_ops.ops):
            if not isinstance(op, ops.AddColumnOp) or not _needs_default(op.column):
                continue
            column = op.column
            default = ask(table_ops.table_name, column)
            if default is None:
                continue
            filled = sa.Column(column.name, column.type, nullable=False, server_default=default,
                               comment=column.comment)
            table_ops.ops[index] = ops.AddColumnOp(table_ops.table_name, filled, schema=op.schema)
            drops.append(ops.AlterColumnOp(
                table_ops.table_name, column.name, schema=op.schema, modify_server_default=None,
                existing_server_default=default, existing_type=column.type, existing_nullable=False,
            ))
        if drops:
            result.append(ops.ModifyTableOps(table_ops.table_name, drops, schema=table_ops.schema))
    container.ops = result


def _needs_default(column: Any) -> bool:
    return (not column.nullable and column.server_default is None and not column.primary_key
            and column.computed is None and column.identity is None)


def _flatten(ops: Any) -> list[Any]:
    out = []
    for op in ops.ops:
        out.extend(_flatten(op) if hasattr(op, "ops") else [op])
    return out


def describe_ops(upgrade_ops: Any) -> list[str]:
    """Short phrases for people: 'add column users.nickname', 'create table tags'..."""
    phrases = []
    for op in _flatten(upgrade_ops):
        kind = type(op).__name__.removesuffix("Op")
        words = "".join(f" {c.lower()}" if c.isupper() else c for c in kind).strip()
        table = getattr(op, "table_name", None)
        column = getattr(getattr(op, "column", None), "name", None) or getattr(op, "column_name", None)
        other = getattr(op, "index_name", None) or getattr(getattr(op, "enum", None), "name", None)
        target = f"{table}.{column}" if table and column else (table or other or "")
        phrases.append(f"{words} {target}".strip())
    return phrases


def default_message(upgrade_ops: Any) -> str:
    phrases = describe_ops(upgrade_ops)
    text = " and ".join(phrases[:2]) + (" and more" if len(phrases) > 2 else "")
    return text.replace(".", " ")

