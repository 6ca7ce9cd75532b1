"""A database's schema as its engine reports it, and the differences between two databases of one engine.

project.core.inspection.schema_compare compares a live database with the history replayed into SQLite, so it
compares column types by family and length only. Here both sides are databases of the same engine (what the
migrations built and what `metadata.create_all()` builds from the same models), so types are compared exactly
as the engine reports them: BIGINT is not INTEGER, TIMESTAMP WITH TIME ZONE is not TIMESTAMP WITHOUT TIME ZONE.
Server defaults go through schema_compare's normaliser (`now()` and `CURRENT_TIMESTAMP` are one default), CHECK
texts through its CHECK normaliser; names of constraints and indexes are compared, because later revisions
drop them by name.

Each difference is a (category, text) pair: the category (`type`, `nullable`, `index`...) names the failure's
kind, the text says what differs in one line.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from project.core.bookkeeping import bookkeeping_tables
from project.core.inspection.schema_compare import normalise_check, normalise_default

Snapshot = dict[str, Any]


def snapshot(url: str) -> Snapshot:
    """The application's tables of the database at `url` (the tool's own left out), and PostgreSQL's enum types."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return _reflect(sa.inspect(connection), connection.dialect)
    finally:
        engine.dispose()


def _reflect(inspector: Any, dialect: Any) -> Snapshot:
    ignored = bookkeeping_tables()
    mysql = dialect.name in ("mysql", "mariadb")
    tables: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        if table in ignored:
            continue
        columns = {}
        for column in inspector.get_columns(table):
            columns[column["name"]] = {
                "type": _type_text(column["type"], dialect),
                "nullable": bool(column["nullable"]),
                "default": normalise_default(column.get("default"), _family(column["type"])),
                "raw_default": column.get("default"),
                # PostgreSQL and MySQL say whether the key is generated (serial, identity, AUTO_INCREMENT).
                "autoincrement": bool(column.get("autoincrement")) if "autoincrement" in column else None,
            }
        pk = inspector.get_pk_constraint(table)
        if dialect.name == "sqlite" and len(pk.get("constrained_columns") or ()) == 1:
            # SQLite generates a key only for a column declared exactly INTEGER PRIMARY KEY (the rowid), so the
            # tool writes a BigInteger key as BigInteger().with_variant(Integer(), "sqlite"): the migrated table
            # says INTEGER where create_all() of the same models says BIGINT (and could not generate the key).
            # Both are SQLite's 64-bit rowid integer: one type here, named for what it is.
            key = columns[pk["constrained_columns"][0]]
            if key["type"] in ("INTEGER", "BIGINT"):
                key["type"] = "INTEGER or BIGINT (a one-column integer key: SQLite's 64-bit rowid)"
        fks = {(fk.get("name"), tuple(fk["constrained_columns"]), fk["referred_table"],
                tuple(fk["referred_columns"])) for fk in inspector.get_foreign_keys(table)}
        uniques = {u.get("name") or f"(unnamed {', '.join(u['column_names'])})": tuple(u["column_names"])
                   for u in inspector.get_unique_constraints(table)}
        fk_names = {fk[0] for fk in fks if fk[0]}
        indexes = {}
        for index in inspector.get_indexes(table):
            name = index.get("name")
            if index.get("duplicates_constraint") or name in uniques:
                continue  # the index behind a unique constraint (PostgreSQL, MySQL)
            if mysql and name in fk_names:
                continue  # the index MySQL creates for a foreign key that no index covers
            indexes[name] = (tuple(index["column_names"]), bool(index.get("unique")))
        checks = set()
        for check in inspector.get_check_constraints(table):
            text = normalise_check(check["sqltext"], dialect.name)
            checks.add((check.get("name"), text))
        tables[table] = {"columns": columns, "pk": (pk.get("name"), tuple(pk.get("constrained_columns") or ())),
                         "fks": fks, "uniques": uniques, "indexes": indexes, "checks": checks}
    enums = {}
    if dialect.name == "postgresql":
        enums = {e["name"]: tuple(e["labels"]) for e in inspector.get_enums()}
    return {"tables": tables, "enums": enums}


def _type_text(type_: Any, dialect: Any) -> str:
    try:
        return str(type_.compile(dialect=dialect))
    except Exception:  # a type the dialect reflects but cannot render: its repr still tells two apart
        return repr(type_)


def _family(type_: Any) -> str:
    """The family normalise_default needs to read booleans and numbers ('1' and true are one integer default)."""
    if isinstance(type_, sa.Integer | sa.Boolean):
        return "integer"
    if isinstance(type_, sa.Numeric):
        return "numeric"
    return ""


def empty(snap: Snapshot) -> bool:
    return not snap["tables"] and not snap["enums"]


def differences(got: Snapshot, want: Snapshot, got_name: str = "migrated", want_name: str = "models"
                ) -> list[tuple[str, str]]:
    """What differs between `got` (e.g. the migrated database) and `want` (e.g. create_all of the models)."""
    diffs: list[tuple[str, str]] = []
    g, w = got["tables"], want["tables"]
    diffs += [("table-missing", f"table {t}: missing from the {got_name} database")
              for t in sorted(w.keys() - g.keys())]
    diffs += [("table-extra", f"table {t}: in the {got_name} database, not in the {want_name}")
              for t in sorted(g.keys() - w.keys())]
    for table in sorted(g.keys() & w.keys()):
        diffs += _table_differences(table, g[table], w[table], got_name, want_name)
    for name in sorted(got["enums"].keys() | want["enums"].keys()):
        mine, theirs = got["enums"].get(name), want["enums"].get(name)
        if mine != theirs:
            diffs.append(("enum-type", f"enum type {name}: {_labels(mine)} in the {got_name} database, "
                                       f"{_labels(theirs)} in the {want_name}"))
    return diffs


def _labels(labels: tuple[str, ...] | None) -> str:
    return "absent" if labels is None else f"({', '.join(labels)})"


def _table_differences(table: str, got: dict[str, Any], want: dict[str, Any], got_name: str, want_name: str
                       ) -> list[tuple[str, str]]:
    diffs = []
    gc, wc = got["columns"], want["columns"]
    diffs += [("column-missing", f"column {table}.{c}: missing from the {got_name} database")
              for c in sorted(wc.keys() - gc.keys())]
    diffs += [("column-extra", f"column {table}.{c}: in the {got_name} database, not in the {want_name}")
              for c in sorted(gc.keys() - wc.keys())]
    for name in sorted(gc.keys() & wc.keys()):
        mine, theirs = gc[name], wc[name]
        where = f"column {table}.{name}"
        if mine["type"] != theirs["type"]:
            diffs.append(("type", f"{where}: {mine['type']} {got_name}, {theirs['type']} {want_name}"))
        if mine["nullable"] != theirs["nullable"]:
            diffs.append(("nullable", f"{where}: {_null(mine)} {got_name}, {_null(theirs)} {want_name}"))
        if mine["default"] != theirs["default"]:
            diffs.append(("default", f"{where}: server default {mine['raw_default']!r} {got_name}, "
                                     f"{theirs['raw_default']!r} {want_name}"))
        if mine["autoincrement"] != theirs["autoincrement"] and name in want["pk"][1]:
            diffs.append(("autoincrement", f"{where}: autoincrement {mine['autoincrement']} {got_name}, "
                                           f"{theirs['autoincrement']} {want_name}"))
    if got["pk"] != want["pk"]:
        diffs.append(("pk", f"primary key of {table}: {_pk(got['pk'])} {got_name}, {_pk(want['pk'])} {want_name}"))
    for what, key in (("fk", "fks"), ("check", "checks")):
        for item in sorted(want[key] - got[key], key=repr):
            diffs.append((what, f"{_describe(what, table, item)}: missing from the {got_name} database"))
        for item in sorted(got[key] - want[key], key=repr):
            diffs.append((what, f"{_describe(what, table, item)}: in the {got_name} database, not in the {want_name}"))
    for what, key in (("unique", "uniques"), ("index", "indexes")):
        mine, theirs = got[key], want[key]
        for name in sorted(theirs.keys() - mine.keys(), key=str):
            diffs.append((what, f"{what} {name} on {table} {_cols(theirs[name])}: missing from the {got_name} "
                                "database"))
        for name in sorted(mine.keys() - theirs.keys(), key=str):
            diffs.append((what, f"{what} {name} on {table} {_cols(mine[name])}: in the {got_name} database, "
                                f"not in the {want_name}"))
        for name in sorted(mine.keys() & theirs.keys(), key=str):
            if mine[name] != theirs[name]:
                diffs.append((what, f"{what} {name} on {table}: {_cols(mine[name])} {got_name}, "
                                    f"{_cols(theirs[name])} {want_name}"))
    return diffs


def _null(column: dict[str, Any]) -> str:
    return "NULL" if column["nullable"] else "NOT NULL"


def _pk(pk: tuple[str | None, tuple[str, ...]]) -> str:
    return f"{pk[0] or '(unnamed)'} ({', '.join(pk[1])})"


def _cols(shape: Any) -> str:
    if isinstance(shape, tuple) and len(shape) == 2 and isinstance(shape[1], bool):
        return f"{'unique ' if shape[1] else ''}({', '.join(shape[0])})"
    return f"({', '.join(shape)})"


def _describe(what: str, table: str, item: tuple[Any, ...]) -> str:
    if what == "fk":
        name, columns, referred, referred_columns = item
        return (f"foreign key {name or '(unnamed)'} {table}({', '.join(columns)}) -> "
                f"{referred}({', '.join(referred_columns)})")
    name, text = item
    return f"CHECK {name or '(unnamed)'} on {table} ({text})"
