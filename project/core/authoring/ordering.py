"""The order of a revision's operations: one every engine accepts, and the same on every run.

Plain autogenerate lists the tables it drops in the order of a set (the same models gave different files) and
before the changes to the tables that stay; it drops a table's indexes before the table, and an index before the
foreign key it backs. PostgreSQL and MariaDB refuse to drop a table that another still references, and
MySQL/MariaDB refuse to drop an index that a foreign key needs ("Cannot drop index ...: needed in a foreign key
constraint"), so `migrate zero` stopped half-way. Here each direction is put in this order:

1. renames (they come first: what else changed was compared after them);
2. created tables, parent-first, each followed by its own indexes;
3. the changes to tables that stay, a foreign key dropped before the indexes;
4. dropped tables, child-first, with nothing dropped from them beforehand (DROP TABLE takes its indexes and
   constraints along).

An index (or unique constraint) dropped while a foreign key that needs it stays (no other index starts with the
key's columns) is dropped between a drop and a re-creation of that foreign key: MySQL/MariaDB then keep an index of
their own for it, as they do for any foreign key. Ties are broken by table name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from alembic.operations import ops


def arrange(upgrade_ops: ops.UpgradeOps) -> None:
    """Put the upgrade in the order above (its reverse, the downgrade, is then in that order too)."""
    from project.core.authoring.renames import RenameColumnOp, RenameTable

    leading: list[Any] = []
    created = {op.table_name for op in upgrade_ops.ops if isinstance(op, ops.CreateTableOp)}
    dropped = {op.table_name for op in upgrade_ops.ops if isinstance(op, ops.DropTableOp)}
    groups: dict[str, list[Any]] = {name: [] for name in created | dropped}  # a table's ops, its own last
    middle: list[Any] = []
    for op in upgrade_ops.ops:
        if isinstance(op, RenameTable) or (isinstance(op, ops.ModifyTableOps) and op.ops
                                           and all(isinstance(o, RenameColumnOp) for o in op.ops)):
            leading.append(op)
        elif isinstance(op, ops.CreateTableOp):
            groups[op.table_name].insert(0, op)  # its indexes follow it
        elif isinstance(op, ops.DropTableOp) or (isinstance(op, ops.ModifyTableOps) and op.table_name in groups):
            groups[op.table_name].append(op)  # what autogenerate drops from it comes first
        else:
            middle.append(op)
    position = {op.table_name: index for index, op in enumerate(upgrade_ops.ops) if isinstance(op, ops.CreateTableOp)}
    creates = _parents_first(created, lambda name: _references(groups[name][0].columns),
                             tie=lambda name: (position[name], name))
    drops = _parents_first(dropped, lambda name: _references(groups[name][-1].to_table().constraints),
                           tie=lambda name: (0, name))
    upgrade_ops.ops = [*leading, *(op for name in creates for op in groups[name]), *middle,
                       *(op for name in reversed(drops) for op in groups[name])]


def _references(items: Iterable[Any]) -> set[str]:
    """The tables that the foreign keys among `items` (columns and constraints) refer to."""
    referred = set()
    for item in items:
        keys = item.foreign_keys if isinstance(item, sa.Column) else \
            item.elements if isinstance(item, sa.ForeignKeyConstraint) else []
        for key in keys:
            referred.add(key.target_fullname.rsplit(".", 1)[0].rsplit(".", 1)[-1])
    return referred


def _parents_first(names: Iterable[str], parents: Callable[[str], set[str]], tie: Callable[[str], Any]) -> list[str]:
    """Each name after the names it refers to (among `names`); a cycle is broken in `tie` order."""
    pending = {name: parents(name) & set(names) - {name} for name in names}
    ordered: list[str] = []
    while pending:
        ready = [name for name, waits in pending.items() if not waits] or [min(pending, key=tie)]
        name = min(ready, key=tie)
        ordered.append(name)
        del pending[name]
        for waits in pending.values():
            waits.discard(name)
    return ordered


def drop_with_tables(container: ops.OpContainer) -> None:
    """No index or constraint dropped from a table that the same direction drops: DROP TABLE takes them along,
    and dropping an index first is what MySQL/MariaDB refuse when a foreign key needs it."""
    dropped = {op.table_name for op in container.ops if isinstance(op, ops.DropTableOp)}
    kept = []
    for op in container.ops:
        if isinstance(op, ops.ModifyTableOps) and op.table_name in dropped:
            op.ops = [o for o in op.ops if not isinstance(o, ops.DropIndexOp | ops.DropConstraintOp)]
            if not op.ops:
                continue
        kept.append(op)
    container.ops = kept


def foreign_keys_first(container: ops.OpContainer, tables_after: Callable[[], dict[str, sa.Table]]) -> None:
    """In each table's changes, foreign keys dropped before indexes; and an index that a foreign key still needs
    afterwards (`tables_after`: the tables once this direction has run) dropped with that key dropped and
    created again around it (see the module's docstring)."""
    after: dict[str, sa.Table] | None = None
    for table_ops in container.ops:
        if not isinstance(table_ops, ops.ModifyTableOps):
            continue
        fks = [o for o in table_ops.ops if isinstance(o, ops.DropConstraintOp) and o.constraint_type == "foreignkey"]
        table_ops.ops = fks + [o for o in table_ops.ops if o not in fks]
        # A key this batch creates (a renamed table's, under its new name) is not there yet when the indexes drop.
        created = {str(o.constraint_name) for o in table_ops.ops if isinstance(o, ops.CreateForeignKeyOp)}
        result: list[Any] = []
        for op in table_ops.ops:
            if isinstance(op, ops.DropIndexOp) or (isinstance(op, ops.DropConstraintOp)
                                                   and op.constraint_type == "unique"):
                if after is None:
                    after = tables_after()
                key = _key_needing(op, after.get(table_ops.table_name))
                if key is not None and str(key.name) not in created:
                    # It stays between them, also for makemigrations --concurrent-indexes.
                    setattr(op, "between_foreign_key", key.name)  # noqa: B010 - an attribute of our own
                    result += [ops.DropConstraintOp.from_constraint(key), op,
                               ops.CreateForeignKeyOp.from_constraint(key)]
                    continue
            result.append(op)
        table_ops.ops = result


def _key_needing(drop: ops.DropIndexOp | ops.DropConstraintOp, table: sa.Table | None
                 ) -> sa.ForeignKeyConstraint | None:
    """The foreign key of `table` (as it is afterwards) that has no index but the dropped one (an index, or the
    index behind a unique constraint) starting with its columns, if any; MySQL/MariaDB refuse that drop while the
    key exists."""
    if table is None:
        return None
    name: Any
    if isinstance(drop, ops.DropIndexOp):
        dropped, name = _column_names(drop.to_index().expressions), drop.index_name
    else:
        constraint = drop.to_constraint()
        dropped, name = [c.name for c in getattr(constraint, "columns", [])], drop.constraint_name
    covers = [_column_names(index.expressions) for index in table.indexes if index.name != name]
    covers += [[c.name for c in constraint.columns] for constraint in table.constraints
               if isinstance(constraint, sa.UniqueConstraint | sa.PrimaryKeyConstraint) and constraint.name != name]
    for key in sorted(table.foreign_key_constraints, key=lambda k: str(k.name)):
        columns = [c.name for c in key.columns] if key.columns else list(key.column_keys)
        if not key.name or dropped[:len(columns)] != columns:
            continue
        if not any(cover[:len(columns)] == columns for cover in covers):
            return key
    return None


def _column_names(expressions: Iterable[Any]) -> list[str]:
    return [getattr(e, "name", None) or str(e) for e in expressions]
