"""Constraint and index names that are the same on every engine, short enough for all of them, and unique.

Names from a naming convention can outgrow an engine's limit (PostgreSQL 63 characters, MariaDB 64). SQLAlchemy
then cuts them when the DDL runs, per engine and so differently on each, and a later revision that drops the
constraint by name fails on one of them. Generated files therefore carry the name already cut to 63 characters,
the way SQLAlchemy cuts it for PostgreSQL (a hash of the full name keeps it stable). Comparing the models with
the scratch database, a name that differs only by that cut is the same name: the next run sees no difference,
and neither does a history whose files wrote the whole name, as plain Alembic does. Two constraints or indexes
with one name are refused before anything is written: autogenerate would otherwise flip between "no changes"
and dropping one of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from alembic.operations import ops
from sqlalchemy.sql.naming import conv

# The shortest identifier limit of the three engines (PostgreSQL's; MariaDB/MySQL: 64; SQLite: none).
MAX_NAME_LENGTH = 63


def short_name(name: str) -> str:
    """`name` cut to MAX_NAME_LENGTH as SQLAlchemy cuts a convention name on PostgreSQL: stable run after run."""
    if len(name) <= MAX_NAME_LENGTH:
        return name
    return f"{name[:MAX_NAME_LENGTH - 8]}_{hashlib.md5(name.encode()).hexdigest()[-4:]}"


def ignore_cut_names(upgrade_ops: ops.UpgradeOps) -> None:
    """Drop the index or unique constraint pairs that differ only by a name cut to the limit: the scratch SQLite
    database (which has no limit) holds the names as the version files wrote them, cut or not, and the models
    have them whole. Such a pair is one object, not a change."""
    kept = []
    for table_ops in upgrade_ops.ops:
        if isinstance(table_ops, ops.ModifyTableOps):
            created = {short_name(name) for op in table_ops.ops if (name := _created_name(op))}
            dropped = {short_name(name) for op in table_ops.ops if (name := _dropped_name(op))}
            same = created & dropped
            table_ops.ops = [op for op in table_ops.ops
                             if short_name(_created_name(op) or _dropped_name(op) or "") not in same]
            if not table_ops.ops:
                continue
        kept.append(table_ops)
    upgrade_ops.ops = kept


def _created_name(op: Any) -> str | None:
    if isinstance(op, ops.CreateIndexOp):
        return str(op.index_name)
    if isinstance(op, ops.CreateUniqueConstraintOp) and op.constraint_name:
        return str(op.constraint_name)
    return None


def _dropped_name(op: Any) -> str | None:
    if isinstance(op, ops.DropIndexOp):
        return str(op.index_name)
    if isinstance(op, ops.DropConstraintOp) and op.constraint_type == "unique" and op.constraint_name:
        return str(op.constraint_name)
    return None


def final_name(name: str | None) -> str | None:
    if name is None:
        return None
    return short_name(name) if isinstance(name, conv) else str(name)


def refuse_bad_names(metadata: sa.MetaData) -> None:
    """One line for the first name that would break on some engine: too long, or used twice."""
    from project.core.errors import CommandError

    seen: dict[str, str] = {}
    for name, what in _named_objects(metadata):
        if not isinstance(name, conv) and len(name) > MAX_NAME_LENGTH:
            raise CommandError(f"The name {name} ({what}) is longer than {MAX_NAME_LENGTH} characters, "
                               "PostgreSQL's limit: give it a shorter name.")
        final = final_name(name)
        assert final is not None
        if final in seen:
            raise CommandError(
                f"Two constraints or indexes would both be named {final}: {seen[final]} and {what}. Give one of "
                "them its own name, or make the naming convention name every column (%(column_0_N_name)s)."
            )
        seen[final] = what


def _named_objects(metadata: sa.MetaData) -> Iterator[tuple[str, str]]:
    for table in sorted(metadata.tables.values(), key=lambda t: t.fullname):
        items: list[sa.Constraint | sa.Index] = [*table.constraints, *table.indexes]
        for item in sorted(items, key=lambda i: (type(i).__name__, str(i.name))):
            name = item.name
            if name is None or not isinstance(name, str):
                continue
            columns = ", ".join(getattr(c, "name", str(c)) for c in getattr(item, "columns", []))
            kind = {"PrimaryKeyConstraint": "primary key", "ForeignKeyConstraint": "foreign key",
                    "UniqueConstraint": "unique constraint", "CheckConstraint": "check constraint",
                    "Index": "index"}.get(type(item).__name__, "constraint")
            yield name, f"the {kind} on {table.name}({columns})"


def shorten_names(upgrade_ops: ops.UpgradeOps) -> None:
    """Write every long convention name in the operations already cut (see the module's docstring)."""
    for op in _walk(upgrade_ops):
        if isinstance(op, ops.CreateTableOp):
            for item in op.columns:
                if isinstance(item, sa.Constraint) and isinstance(item.name, conv) and len(item.name) > MAX_NAME_LENGTH:
                    # The model's own constraint object: its final name on PostgreSQL is this one already.
                    item.name = conv(short_name(item.name))
        for attribute in ("index_name", "constraint_name"):
            name = getattr(op, attribute, None)
            if isinstance(name, conv) and len(name) > MAX_NAME_LENGTH:
                setattr(op, attribute, conv(short_name(name)))


def _walk(container: Any) -> Iterator[Any]:
    for op in container.ops:
        if isinstance(op, ops.OpContainer):
            yield from _walk(op)
        else:
            yield op
