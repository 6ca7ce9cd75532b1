"""Column types as makemigrations writes them, and compares them: by what they are on the three engines.

- A `TypeDecorator` (the project's `UTCDateTime`, any the application defines) is written as what it is on the
  engines: its `impl`, with a `with_variant` for an engine whose `load_dialect_impl` gives another type. The file
  then needs nothing of the application's code, and means the same schema for ever, whatever later becomes of
  the class (docs/portable.md says why this rather than an import).
- A table's autoincrementing key that SQLite would not autoincrement (`BIGINT PRIMARY KEY` is no rowid alias:
  "NOT NULL constraint failed" on an INSERT without an id) is written with SQLAlchemy's documented variant,
  `sa.BigInteger().with_variant(sa.Integer(), "sqlite")`: INTEGER on SQLite, BIGINT on MariaDB and PostgreSQL.
- Two types are the same when every engine gets the same DDL from them (`engine_forms`). makemigrations compares
  the models with the types the history gave (project.core.history.scratch), so a change SQLite cannot see
  (timestamp to timestamptz, INT to BIGINT on a key...) is still a change.
- Server defaults `sa.true()` / `sa.false()` are written as such (Alembic would write SQLite's `sa.text('0')`,
  an integer PostgreSQL refuses for a boolean column).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import elements
from sqlalchemy.types import TypeDecorator

from project.core.history.scratch import HISTORY_TYPE

ENGINES = ("sqlite", "mysql", "postgresql")


def dialects() -> dict[str, Any]:
    global _DIALECTS
    if _DIALECTS is None:
        # Each engine's default driver's dialect: only its compilers are used, its DBAPI is never loaded.
        _DIALECTS = {engine: sa.make_url(f"{engine}://").get_dialect()() for engine in ENGINES}
    return _DIALECTS


_DIALECTS: dict[str, Any] | None = None


def engine_form(type_: Any, engine: str) -> str:
    """The DDL `type_` gives on `engine` ("TIMESTAMP WITH TIME ZONE"), or the error it gives there."""
    try:
        return " ".join(str(type_.compile(dialect=dialects()[engine])).split())
    except Exception as error:  # a type the engine cannot render (String() on MySQL, ARRAY off PostgreSQL)
        return f"<{type(error).__name__}>"


def engine_forms(type_: Any) -> dict[str, str]:
    return {engine: engine_form(type_, engine) for engine in ENGINES}


def engine_type(type_: Any, engine: str) -> Any:
    """The type object `engine` uses for `type_`: variants chosen, TypeDecorators unwrapped."""
    resolved = type_.dialect_impl(dialects()[engine])
    while isinstance(resolved, TypeDecorator):
        resolved = resolved.impl_instance
    return resolved


def portable_type(type_: Any) -> Any:
    """`type_` with each TypeDecorator in it replaced by what it is on the engines; `type_` itself when it holds
    none."""
    mapping = dict(getattr(type_, "_variant_mapping", {}) or {})
    if mapping:
        variants = {name: portable_type(variant) for name, variant in mapping.items()}
        if not isinstance(type_, TypeDecorator) and all(v is mapping[n] for n, v in variants.items()):
            return type_
        base = portable_type(_without_variants(type_))
        for name, variant in sorted(variants.items()):
            base = base.with_variant(variant, name)
        return base
    if not isinstance(type_, TypeDecorator):
        return type_
    base = portable_type(_public(type_.impl_instance))
    for engine, dialect in dialects().items():
        loaded = type_.load_dialect_impl(dialect)
        if engine_form(loaded, engine) != engine_form(base, engine):
            base = base.with_variant(portable_type(_public(loaded)), engine)
    return base


def _public(type_: Any) -> Any:
    """`type_` as an instance of a class a version file can name (`sa.UUID`, `postgresql.JSONB`):
    `load_dialect_impl` often answers with `dialect.type_descriptor(...)`, a dialect's private class."""
    import importlib

    for cls in type(type_).__mro__:
        module = cls.__module__
        if module.startswith("sqlalchemy.dialects."):
            namespace = importlib.import_module(".".join(module.split(".")[:3]))
        elif module.startswith("sqlalchemy."):
            namespace = sa.types
        else:
            return type_  # the application's own class: rendered as Alembic renders it
        if getattr(namespace, cls.__name__, None) is cls:
            return type_ if cls is type(type_) else type_.adapt(cls)
    return type_


def _without_variants(type_: Any) -> Any:
    copied = type_.copy()
    copied._variant_mapping = sa.util.immutabledict()
    return copied


def written_type(column: sa.Column[Any]) -> Any:
    """The type makemigrations writes for a model column (see the module's docstring)."""
    type_ = portable_type(column.type)
    if _key_needs_rowid(column, type_):
        type_ = type_.with_variant(sa.Integer(), "sqlite")
    return type_


def _key_needs_rowid(column: sa.Column[Any], type_: Any) -> bool:
    table = column.table if isinstance(column.table, sa.Table) else None
    return (table is not None and table.autoincrement_column is column
            and "sqlite" not in (getattr(type_, "_variant_mapping", {}) or {})
            and engine_form(type_, "sqlite") != "INTEGER")


def same_on_every_engine(history_type: Any, column: sa.Column[Any]) -> bool:
    """Whether a model column's written type gives every engine the DDL the history's type gave it.

    One difference is let pass: SQLite's INTEGER against BIGINT (or SMALLINT) for an autoincrementing key, which
    is only whether SQLite autoincrements it. A key written before keys got their SQLite variant is then no
    change to migrate (docs/portable.md)."""
    history = engine_forms(history_type)
    model = engine_forms(written_type(column))
    if history["sqlite"] != model["sqlite"] and column.table is not None \
            and getattr(column.table, "autoincrement_column", None) is column \
            and isinstance(engine_type(history_type, "sqlite"), sa.Integer):
        history["sqlite"] = model["sqlite"]
    return history == model


class ModelTypes:
    """Alembic's hooks for one run of autogenerate: `compare_type` and `render_item`."""

    def __init__(self, metadata: sa.MetaData):
        # Which model column a type object belongs to, so that rendering it can write the column's type (a key's
        # SQLite variant). A type object shared by columns that would be written differently is left out.
        owners: dict[int, list[sa.Column[Any]]] = {}
        for table in metadata.tables.values():
            for column in table.columns:
                owners.setdefault(id(column.type), []).append(column)
        self.columns = {}
        for key, columns in owners.items():
            written = {_forms_key(written_type(c)) for c in columns}
            if len(written) == 1:
                self.columns[key] = columns[0]

    def compare_type(self, context: Any, inspected_column: Any, metadata_column: Any,
                     inspected_type: Any, metadata_type: Any) -> bool | None:
        """True when the types differ on some engine; None (Alembic's own comparison) for a column whose type
        the history did not record (SQLite's reflection of it is all there is)."""
        if not inspected_column.info.get(HISTORY_TYPE):
            return None
        return not same_on_every_engine(inspected_type, metadata_column)

    def render_item(self, kind: str, obj: Any, autogen_context: Any) -> str | bool:
        if kind == "type":
            column = self.columns.get(id(obj))
            written = written_type(column) if column is not None else portable_type(obj)
            if written is obj:
                module = type(obj).__module__
                if not module.startswith("sqlalchemy.") and autogen_context.imports is not None:
                    # A type of the application's own that is no TypeDecorator (a UserDefinedType): it has no
                    # portable form, so the file imports it (Alembic writes module.Class(...)).
                    autogen_context.imports.add(f"import {module}")
                return False
            from alembic.autogenerate import render

            # Alembic's own rendering of the replacement (imports for dialect types included): the function
            # behind its render of every type. Private; tests/test_generated_revisions.py pins what it writes.
            rendered: str = render._repr_type(written, autogen_context)
            return rendered
        if kind == "server_default":
            arg = obj.arg if isinstance(obj, sa.DefaultClause) else obj
            prefix = autogen_context.opts.get("sqlalchemy_module_prefix") or "sa."
            if isinstance(arg, elements.False_):
                return f"{prefix}false()"
            if isinstance(arg, elements.True_):
                return f"{prefix}true()"
        return False


def _forms_key(type_: Any) -> tuple[str, ...]:
    forms = engine_forms(type_)
    return tuple(forms[engine] for engine in ENGINES)
