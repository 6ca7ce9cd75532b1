"""SQLAlchemy 2 models for an existing database, written by sqlacodegen (`manage.py inspectdb`).

The database is reflected on the tool's own connection (any driver of docs/settings.md, async ones too),
without the tool's bookkeeping tables, and sqlacodegen's declarative generator writes the module. The header
names the database with its password masked, and says what to review before the first makemigrations.
"""

from __future__ import annotations

import re
from typing import Any

from project.core.bookkeeping import bookkeeping_tables
from project.core.errors import CommandError, mask_url

# A literal with PostgreSQL's casts ('new'::character varying, (0)::numeric): the literal is what every engine reads.
_CAST_LITERAL = re.compile(r"^\(*('(?:[^']|'')*'|-?\d+(?:\.\d+)?)\)*(?:::[\w .,\"\[\]()]+)+$")
# The current time as each engine spells it: CURRENT_TIMESTAMP is the spelling all three accept.
_NOW = re.compile(r"^\(*(now\(\)|current_timestamp(\(\d*\))?|localtimestamp(\(\d*\))?)\)*$", re.IGNORECASE)

HEADER = (
    "# Models written by `manage.py inspectdb` from {url}.\n"
    "# Review them before `manage.py makemigrations`: class and relationship names, and a naming_convention\n"
    "# on Base.metadata for the constraints later revisions will add (docs/adopt.md).\n"
)


def models_source(settings: Any, tables: list[str] | None = None) -> tuple[str, list[str]]:
    """The models module for the settings' database (only `tables` when given) and the tables it covers."""
    from project.core import db

    return db.sync_entry(_models_source)(settings, tables)


def _models_source(settings: Any, tables: list[str] | None) -> tuple[str, list[str]]:
    import sqlalchemy as sa

    from project.core.db import migration_url, settings_connection

    url = migration_url(settings)
    with settings_connection(settings, url) as connection:
        present = sorted(set(sa.inspect(connection).get_table_names()) - bookkeeping_tables())
        if tables:
            unknown = [name for name in tables if name not in present]
            if unknown:
                raise CommandError(f"No table named {', '.join(unknown)} in {mask_url(url)}; its tables are: "
                                   f"{', '.join(present) or '(none)'}.")
        chosen = tables or present
        if not chosen:
            raise CommandError(f"{mask_url(url)} has no tables to inspect.")
        from sqlacodegen.generators import DeclarativeGenerator  # seconds to import (inflect): only when needed

        metadata = sa.MetaData()
        metadata.reflect(connection, only=chosen)
        if connection.dialect.name == "mysql":
            drop_foreign_key_indexes(metadata)
            portable_mysql_types(metadata)
        if connection.dialect.name == "sqlite":
            sqlite_unique_constraints(metadata, connection)
        portable_defaults(metadata)
        portable_checks(metadata, connection.dialect.name)
        code = DeclarativeGenerator(metadata, connection, ()).generate()
        if connection.in_transaction():
            connection.rollback()
    return HEADER.format(url=mask_url(url)) + code.rstrip("\n") + "\n", chosen


def sqlite_unique_constraints(metadata: Any, connection: Any) -> None:
    """Every UNIQUE constraint of a SQLite table, with its name. SQLAlchemy's SQLite reflection finds them by
    reading the table's SQL with regular expressions (dialects/sqlite/base.py, get_unique_constraints): an inline
    `email VARCHAR(50) UNIQUE` is missed, its pattern allowing no parenthesis in the type, and an inline
    `CONSTRAINT uq_code UNIQUE` loses its name. SQLite's own catalogue lists each UNIQUE constraint (PRAGMA
    index_list: origin 'u', with its columns in PRAGMA index_info); the names are read from the table's SQL with
    sqlglot. Constraints reflection already has (same columns) are kept, and named when they were not."""
    import sqlalchemy as sa

    for table in metadata.tables.values():
        quoted = '"' + table.name.replace('"', '""') + '"'
        uniques = [row for row in connection.exec_driver_sql(f"PRAGMA index_list({quoted})") if row[3] == "u"]
        if not uniques:
            continue
        names = _sqlite_unique_names(connection, table.name)
        have: dict[frozenset[str], Any] = {frozenset(c.name for c in i.columns): i for i in table.indexes if i.unique}
        have.update({frozenset(c.name for c in k.columns): k for k in table.constraints
                     if isinstance(k, sa.UniqueConstraint)})
        for row in uniques:
            index = '"' + str(row[1]).replace('"', '""') + '"'
            columns = [r[2] for r in sorted(connection.exec_driver_sql(f"PRAGMA index_info({index})"))]
            if not columns or any(c not in table.c for c in columns):
                continue
            name = names.get(frozenset(columns))
            found = have.get(frozenset(columns))
            if found is None:
                table.append_constraint(sa.UniqueConstraint(*columns, name=name))
            elif found.name is None and name and isinstance(found, sa.UniqueConstraint):
                found.name = name


def _sqlite_unique_names(connection: Any, table: str) -> dict[frozenset[str], str]:
    """{columns: name} of the named UNIQUE constraints in a SQLite table's CREATE TABLE, inline or not."""
    import sqlglot
    from sqlglot import exp

    sql = connection.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                                     (table,)).scalar()
    try:
        statement = sqlglot.parse_one(sql or "", read="sqlite")
    except sqlglot.errors.SqlglotError:
        return {}
    names: dict[frozenset[str], str] = {}
    schema = statement.this if isinstance(statement, exp.Create) else None
    for part in schema.expressions if isinstance(schema, exp.Schema) else []:
        if isinstance(part, exp.ColumnDef):
            for constraint in part.args.get("constraints") or []:
                if isinstance(constraint.args.get("kind"), exp.UniqueColumnConstraint) and constraint.name:
                    names[frozenset([part.name])] = constraint.name
        elif isinstance(part, exp.Constraint) and part.name:
            for unique in part.expressions:
                if isinstance(unique, exp.UniqueColumnConstraint) and isinstance(unique.this, exp.Schema):
                    names[frozenset(c.name for c in unique.this.expressions)] = part.name
    return names


def drop_foreign_key_indexes(metadata: Any) -> None:
    """Forget the index MySQL/MariaDB made for each foreign key, under the key's own name: creating the key
    makes it again on those engines, and as a model's Index its name would collide with the key's elsewhere."""
    for table in metadata.tables.values():
        keys = {(fk.name, tuple(fk.column_keys)) for fk in table.foreign_key_constraints}
        for index in list(table.indexes):
            if not index.unique and (index.name, tuple(c.name for c in index.columns)) in keys:
                table.indexes.discard(index)


def portable_defaults(metadata: Any) -> None:
    """Server defaults in the spelling every engine reads: the models' first revision replays on SQLite
    (check, makemigrations) and runs on the other engines, so `'new'::character varying` becomes `'new'` and
    `now()` / `current_timestamp()` become CURRENT_TIMESTAMP. Any other expression is kept as reflected."""
    import sqlalchemy as sa

    for table in metadata.tables.values():
        for column in table.columns:
            default = column.server_default
            if not isinstance(default, sa.DefaultClause) or not isinstance(default.arg, sa.TextClause | str):
                continue
            text = str(default.arg.text if isinstance(default.arg, sa.TextClause) else default.arg).strip()
            if match := _CAST_LITERAL.match(text):
                text = match.group(1)
            elif _NOW.match(text):
                text = "CURRENT_TIMESTAMP"
            default.arg = sa.text(text)


def portable_mysql_types(metadata: Any) -> None:
    """MySQL's integer spellings as the types every engine has: TINYINT(1) is MySQL's boolean, the other
    TINYINTs and MEDIUMINT are small and plain integers, a display width (INTEGER(11)) means nothing to the
    others. SQLite, where the history replays, cannot
    render TINYINT or MEDIUMINT at all. Unsigned columns and MySQL's other own types (LONGTEXT, SET, ...) are
    left as reflected: the models' author chooses what they become on the other engines."""
    import sqlalchemy as sa
    from sqlalchemy.dialects import mysql

    for table in metadata.tables.values():
        for column in table.columns:
            type_ = column.type
            integers = (mysql.TINYINT, mysql.SMALLINT, mysql.MEDIUMINT, mysql.INTEGER, mysql.BIGINT)
            if not isinstance(type_, integers) or getattr(type_, "unsigned", False) \
                    or getattr(type_, "zerofill", False):
                continue
            if isinstance(type_, mysql.TINYINT) and type_.display_width == 1:
                column.type = sa.Boolean()
            elif isinstance(type_, mysql.TINYINT):
                column.type = sa.SmallInteger()
            else:
                column.type = type_.as_generic()


def portable_checks(metadata: Any, dialect: str) -> None:
    """CHECK constraints in SQL every engine reads: the text as `check --database` normalises it (no casts,
    no quotes around names, PostgreSQL's `= ANY (ARRAY[...])` as IN, MariaDB's octet_length as LENGTH)."""
    import sqlalchemy as sa

    from project.core.inspection.schema_compare import normalise_check

    for table in metadata.tables.values():
        for constraint in table.constraints:
            if isinstance(constraint, sa.CheckConstraint) and isinstance(constraint.sqltext, sa.TextClause):
                constraint.sqltext = sa.text(normalise_check(constraint.sqltext.text, dialect))
