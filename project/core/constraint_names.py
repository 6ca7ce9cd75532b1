"""Constraint and index names that are the same on every engine, short enough for all of them, and unique.

Names from a naming convention can outgrow an engine's limit (PostgreSQL 63 characters, MariaDB 64). SQLAlchemy
then cuts them when the DDL runs, per engine and so differently on each, and a later revision that drops the
constraint by name fails on one of them. Generated files therefore carry the name already cut to 63 characters,
the way SQLAlchemy cuts it for PostgreSQL (a hash of the full name keeps it stable); the scratch database compares
with the same limit, so the next run sees no difference. Two constraints or indexes with one name are refused
before anything is written: autogenerate would otherwise flip between "no changes" and dropping one of them.
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


def limit_identifiers(connection: Any) -> None:
    """Make the scratch SQLite connection cut convention names as PostgreSQL does, so that autogenerate compares
    the models' names with the names the generated files wrote (SQLite itself has no limit)."""
    connection.dialect.max_identifier_length = MAX_NAME_LENGTH


def final_name(name: str | None) -> str | None:
    if name is None:
        return None
    return short_name(name) if isinstance(name, conv) else str(name)


def refuse_bad_names(metadata: sa.MetaData) -> None:
    """One line for the first name that would break on some engine: too long, or used twice."""
    from project.core.management.base import CommandError

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
