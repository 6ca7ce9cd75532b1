"""A live database against the schema the history produces at a revision: what `check --database`,
`migrate --fake-initial` (and `repair`) compare.

The expected schema is the history replayed into a scratch SQLite database (project.core.history.scratch), so every
comparison must mean the same on SQLite, MariaDB/MySQL and PostgreSQL. `compare_schemas` compares names and shapes
(tables, columns' nullability/family/length, primary keys, foreign keys, indexes and uniques); this module adds
what each engine spells its own way, compared after normalising:

- server defaults: quotes, casts ('0'::integer, 'open'::task_state), wrapping parentheses, booleans
  (true / '1' / 1), numbers ('0.00' / 0) and the current-time spellings (now(), current_timestamp(),
  CURRENT_TIMESTAMP) are each reduced to one form; PostgreSQL's serial `nextval(...)` counts as no default.
- enum values: SQLite keeps an enum as VARCHAR, so the expected values come from the version files
  (project.core.history.enums); they are compared where the live engine has a native enum (PostgreSQL's named
  types, MySQL's ENUM columns).
- CHECK constraints: their text, parsed with sqlglot and rendered again with
  identifiers unquoted, casts and redundant parentheses dropped. MariaDB's own `json_valid` checks on JSON
  columns are not the history's and are left out.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from project.core.bookkeeping import bookkeeping_tables
from project.core.history.enums import enum_columns
from project.core.history.scratch import HISTORY_TYPE, scratch_sqlite

Schema = dict[str, dict[str, Any]]

NOW_SPELLINGS = {"current_timestamp", "current_timestamp()", "now()", "localtimestamp", "localtimestamp()",
                 "transaction_timestamp()", "statement_timestamp()", "getdate()", "datetime('now')"}
TRUE_SPELLINGS = {"true", "'true'", "t", "'t'"}
FALSE_SPELLINGS = {"false", "'false'", "f", "'f'"}
# A trailing PostgreSQL cast: ::integer, ::character varying, ::"Mixed"."type", ::text[] ...
_CAST = re.compile(r'::\s*(?:"[^"]+"|[\w.]+)(?:\s+(?:varying|precision|without time zone|with time zone))?'
                   r'(?:\(\d+(?:,\s*\d+)?\))?(?:\[\])?')


def database_differences(connection: Any, settings: Any, revision: str | None, *,
                         tables: set[str] | None = None) -> list[str]:
    """Each difference between the database on `connection` and the schema the history produces at `revision`
    (an id, "heads", or None for an empty history), as one line. `tables` (lower-case names): compare only
    these, and leave the database's other tables out (another application's, sharing the database).

    The connection is only read; an open transaction it needed for reflection is rolled back.
    """
    live = live_schema(connection)
    if tables is not None:
        live = {name: shape for name, shape in live.items() if name.lower() in tables}
    if connection.in_transaction():
        connection.rollback()
    return compare(history_schema(settings, revision), live, connection.dialect.name)


def live_schema(connection: Any) -> Schema:
    """The reflected schema of the database on `connection`, names and shapes (_schema) plus this module's details."""
    from sqlalchemy import inspect

    return _reflect(inspect(connection), connection.dialect.name)


def history_schema(settings: Any, revision: str | None) -> Schema:
    """The schema the history produces at `revision`, replayed into a scratch SQLite database."""
    from sqlalchemy import inspect

    with scratch_sqlite(settings, revision) as scratch:
        schema = _reflect(inspect(scratch), "sqlite")
        for (table, column), type_ in _history_types(scratch).items():
            if table in schema:
                schema[table]["history_types"][column] = type_
    if revision is not None:
        for (table, column), enum in enum_columns(settings, revision).items():
            if table in schema and column in schema[table]["columns"]:
                schema[table]["enums"][column] = tuple(enum.enums)
    return schema


def _history_types(scratch: Any) -> dict[tuple[str, str], Any]:
    """(table, column) -> the exact type the history's operations gave it, for the columns whose record SQLite
    still agrees with (scratch's column_reflect marks them HISTORY_TYPE); the others are left out."""
    import sqlalchemy as sa

    metadata = sa.MetaData()
    metadata.reflect(scratch)
    return {(table.name, column.name): column.type for table in metadata.tables.values()
            for column in table.columns if column.info.get(HISTORY_TYPE)}


def compare(expected: Schema, live: Schema, dialect: str) -> list[str]:
    """compare_schemas' differences, then exact types, defaults, enum values and CHECK constraints."""
    diffs = compare_schemas(expected, live)
    for table in sorted(expected.keys() & live.keys()):
        diffs += _compare_types(table, expected[table], live[table], dialect)
        diffs += _compare_defaults(table, expected[table], live[table])
        diffs += _compare_enums(table, expected[table], live[table], dialect)
        diffs += _compare_checks(table, expected[table], live[table])
    return diffs


# --- names and shapes, comparable across engines ---------------------------------------------------------


def _schema(inspector: Any) -> dict[str, dict[str, Any]]:
    """Names and shapes only, comparable across engines."""
    ignored = bookkeeping_tables()  # the tool's bookkeeping, not the app's schema
    schema = {}
    for table in inspector.get_table_names():
        if table in ignored:
            continue
        columns = {c["name"]: (bool(c["nullable"]), _family(c["type"]), _length(c["type"]))
                   for c in inspector.get_columns(table)}
        fks = inspector.get_foreign_keys(table)
        fk_names = {fk["name"] for fk in fks if fk.get("name")}
        named: dict[str, tuple[tuple[str, ...], bool]] = {}
        for uq in inspector.get_unique_constraints(table):
            if uq.get("name"):
                named[uq["name"]] = (tuple(uq["column_names"]), True)
        for ix in inspector.get_indexes(table):
            # MySQL backs each foreign key (and unique constraint) with an index of the same name.
            if ix.get("name") and ix["name"] not in fk_names and ix["name"] not in named:
                named[ix["name"]] = (tuple(ix["column_names"]), bool(ix.get("unique")))
        schema[table] = {
            "columns": columns,
            "pk": tuple(inspector.get_pk_constraint(table).get("constrained_columns") or ()),
            "fks": {(tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
                    for fk in fks},
            "indexes": named,
        }
    return schema


def _family(type_: Any) -> str:
    import sqlalchemy as sa

    # MySQL stores Boolean as TINYINT(1): count it with the integers.
    from sqlalchemy.sql.sqltypes import _Binary

    for family, kinds in (("integer", (sa.Integer, sa.Boolean)), ("string", (sa.String, sa.Enum)),
                          ("numeric", (sa.Numeric,)), ("datetime", (sa.DateTime,)), ("date", (sa.Date,)),
                          ("time", (sa.Time,)), ("binary", (_Binary,)), ("json", (sa.JSON,))):
        if isinstance(type_, kinds):
            return family
    return type(type_).__name__.lower()


def _length(type_: Any) -> int | None:
    import sqlalchemy as sa

    if isinstance(type_, sa.String) and not isinstance(type_, (sa.Text, sa.Enum)):
        return type_.length
    return None


def compare_schemas(expected: dict[str, Any], live: dict[str, Any]) -> list[str]:
    diffs = [f"table {t} is missing" for t in sorted(set(expected) - set(live))]
    diffs += [f"table {t} exists but no migration creates it" for t in sorted(set(live) - set(expected))]
    for table in sorted(set(expected) & set(live)):
        diffs += _compare_table(table, expected[table], live[table])
    return diffs


def _compare_table(table: str, want: dict[str, Any], have: dict[str, Any]) -> list[str]:
    diffs = [f"column {table}.{c} is missing" for c in want["columns"] if c not in have["columns"]]
    diffs += [f"column {table}.{c} exists but no migration creates it"
              for c in have["columns"] if c not in want["columns"]]
    for name in want["columns"].keys() & have["columns"].keys():
        (w_null, w_family, w_len), (h_null, h_family, h_len) = want["columns"][name], have["columns"][name]
        if w_null != h_null:
            diffs.append(f"column {table}.{name} is {'NULL' if h_null else 'NOT NULL'}, expected "
                         f"{'NULL' if w_null else 'NOT NULL'}")
        if w_family != h_family:
            diffs.append(f"column {table}.{name} is a {h_family} column, expected {w_family}")
        elif w_len and h_len and w_len != h_len:
            diffs.append(f"column {table}.{name} has length {h_len}, expected {w_len}")
    if want["pk"] != have["pk"]:
        diffs.append(f"primary key of {table} is ({', '.join(have['pk'])}), expected ({', '.join(want['pk'])})")
    for fk in sorted(want["fks"] - have["fks"]):
        diffs.append(f"foreign key {table}({', '.join(fk[0])}) -> {fk[1]} is missing")
    for fk in sorted(have["fks"] - want["fks"]):
        diffs.append(f"foreign key {table}({', '.join(fk[0])}) -> {fk[1]} exists but no migration creates it")
    for name in sorted(want["indexes"].keys() - have["indexes"].keys()):
        diffs.append(f"index or unique constraint {name} on {table} is missing")
    for name in sorted(have["indexes"].keys() - want["indexes"].keys()):
        diffs.append(f"index or unique constraint {name} on {table} exists but no migration creates it")
    for name in sorted(want["indexes"].keys() & have["indexes"].keys()):
        if want["indexes"][name] != have["indexes"][name]:
            diffs.append(f"index or unique constraint {name} on {table} differs: "
                         f"{_ix(have['indexes'][name])}, expected {_ix(want['indexes'][name])}")
    return diffs


def _ix(shape: tuple[tuple[str, ...], bool]) -> str:
    return f"{'unique ' if shape[1] else ''}({', '.join(shape[0])})"


# --- reflection ------------------------------------------------------------------------------------------


def _reflect(inspector: Any, dialect: str) -> Schema:
    schema = _schema(inspector)
    for table, shape in schema.items():
        columns = inspector.get_columns(table)
        shape["defaults"] = {c["name"]: normalise_default(c.get("default"), _family(c["type"])) for c in columns}
        shape["enums"] = {c["name"]: tuple(c["type"].enums) for c in columns
                          if dialect != "sqlite" and getattr(c["type"], "enums", None)}
        shape["checks"], json_columns = _checks(inspector, table, dialect, {c["name"]: c["type"] for c in columns})
        for name in json_columns | _mariadb_json_columns(inspector, table):
            # MariaDB's JSON is LONGTEXT with CHECK (json_valid(col)), and reflects as LONGTEXT: it is JSON.
            if name in shape["columns"]:
                shape["columns"][name] = (shape["columns"][name][0], "json", None)
        shape["types"] = {c["name"]: c["type"] for c in columns}
        shape["history_types"] = {}
        shape["native"] = {c["name"] for c in columns if _carries_its_values(c["type"], dialect)}
    return schema


def _checks(inspector: Any, table: str, dialect: str,
            types: dict[str, Any]) -> tuple[dict[str, str | None], set[str]]:
    """Normalised CHECK text -> its name (None when unnamed); and the columns MariaDB made JSON."""
    checks: dict[str, str | None] = {}
    json_columns: set[str] = set()
    for check in inspector.get_check_constraints(table):
        text = normalise_check(check["sqltext"], dialect)
        if dialect in {"mysql", "mariadb"} and _is_json_check(text, check.get("name"), types):
            json_columns.add(check["name"])
            continue  # MariaDB adds CHECK (json_valid(col)) to each JSON column itself
        checks[text] = check.get("name")
    return checks, json_columns


def _mariadb_json_columns(inspector: Any, table: str) -> set[str]:
    """The columns MariaDB made for JSON: a column-level CHECK (json_valid(col)), named after the column, which
    SQLAlchemy's reflection does not return (it reads only table-level CHECKs)."""
    from sqlalchemy import Engine, text

    if not getattr(inspector.dialect, "is_mariadb", False):
        return set()
    query = text("SELECT constraint_name, check_clause FROM information_schema.check_constraints "
                 "WHERE constraint_schema = database() AND table_name = :table")
    bind = inspector.bind
    if isinstance(bind, Engine):
        with bind.connect() as connection:
            rows = connection.execute(query, {"table": table}).all()
    else:
        rows = bind.execute(query, {"table": table}).all()
    return {name for name, clause in rows
            if re.fullmatch(rf"json_valid\(`?{re.escape(name)}`?\)", str(clause).strip(), flags=re.IGNORECASE)}


def _carries_its_values(type_: Any, dialect: str) -> bool:
    """A column whose type itself limits its values where SQLite needs a CHECK for it (Enum and Boolean
    with create_constraint=True): SQLAlchemy writes no CHECK for a native enum, nor for PostgreSQL's boolean."""
    import sqlalchemy as sa

    if dialect == "sqlite":
        return False
    return bool(getattr(type_, "enums", None)) or (dialect == "postgresql" and isinstance(type_, sa.Boolean))


def _is_json_check(text: str, name: str | None, types: dict[str, Any]) -> bool:
    return bool(name in types and re.fullmatch(rf"json_valid\({re.escape(name or '')}\)", text, flags=re.IGNORECASE))


# --- normalising -----------------------------------------------------------------------------------------


def normalise_default(text: Any, family: str = "") -> str | None:
    """One spelling for a reflected server default, whichever engine reflected it (None: no default)."""
    if text is None:
        return None
    value = _unwrap(str(text).strip())
    while (stripped := _unwrap(_CAST.sub("", value).strip())) != value:
        value = stripped
    lowered = value.lower()
    if lowered in {"", "null"} or lowered.startswith("nextval("):
        return None  # nothing, or PostgreSQL's serial: the column's autoincrement, not a default the history set
    if re.sub(r"\(\d*\)$", "()", lowered) in NOW_SPELLINGS | {"current_timestamp()"}:
        return "CURRENT_TIMESTAMP"
    if family == "integer" and lowered in TRUE_SPELLINGS:
        return "1"
    if family == "integer" and lowered in FALSE_SPELLINGS:
        return "0"
    if len(value) >= 2 and value[0] == value[-1] == "'":
        value = value[1:-1].replace("''", "'")
    if family in {"integer", "numeric"}:
        try:
            number = Decimal(value)
        except InvalidOperation:
            return value
        return format(number.normalize(), "f") if number else "0"
    return value


def normalise_check(text: str, dialect: str) -> str:
    """One spelling for a CHECK constraint's text, whichever engine reflected it."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.optimizer.simplify import simplify

    source = _CAST.sub("", text.strip())
    if dialect in {"mysql", "mariadb"}:
        # MariaDB stores LENGTH() as its synonym octet_length(): spell it back
        source = re.sub(r"\boctet_length\(", "length(", source.replace("`", '"'), flags=re.IGNORECASE)
    try:
        # Read as PostgreSQL whatever the engine: sqlglot's MySQL reader would turn LENGTH into OCTET_LENGTH,
        # and the text of a CHECK is plain SQL on the three engines once MySQL's backquotes are double quotes.
        tree = sqlglot.parse_one(source, read="postgres")
    except sqlglot.errors.ParseError:
        return re.sub(r"[\s`\"()]+", "", source).lower()  # unparsable: compare what is left of the text
    for cast in list(tree.find_all(exp.Cast)):  # PostgreSQL adds them freely: (state)::text
        tree = _replace(tree, cast, cast.this)
    for node in list(tree.find_all(exp.EQ)):  # PostgreSQL's spelling of IN: x = ANY (ARRAY[...])
        values = node.expression.this if isinstance(node.expression, exp.Any) else None
        while isinstance(values, exp.Paren):
            values = values.this
        if isinstance(values, exp.Array):
            tree = _replace(tree, node, exp.In(this=node.this, expressions=values.expressions))
    tree = simplify(tree)  # parentheses the engines add where they change nothing
    for identifier in tree.find_all(exp.Identifier):
        identifier.set("quoted", False)
        identifier.set("this", identifier.this.lower())
    return str(tree.sql(dialect="postgres"))  # keywords upper case, names lower case, literals as written


def _replace(tree: Any, node: Any, replacement: Any) -> Any:
    """`node` replaced within `tree`; the new tree (the replacement itself when node was the root)."""
    if node is tree:
        return replacement
    node.replace(replacement)
    return tree


def _unwrap(text: str) -> str:
    """Outer parentheses removed when they enclose the whole text: (CURRENT_TIMESTAMP), ('0')."""
    while text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1].strip()
    return text


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


# --- comparing -------------------------------------------------------------------------------------------


def _compare_types(table: str, want: dict[str, Any], have: dict[str, Any], dialect: str) -> list[str]:
    """What the family comparison cannot see: an integer's size (BIGINT against INTEGER) and, on PostgreSQL, a
    timestamp's time zone (MySQL/MariaDB and SQLite keep no such flag). The expectation is the type the history
    gave the column, as this engine renders it; a column the history gave no known type is not compared."""
    engine = "mysql" if dialect in {"mysql", "mariadb"} else dialect
    diffs = []
    for column in sorted(want["history_types"].keys() & have["types"].keys()):
        if want["columns"].get(column, (None, None))[1] != have["columns"][column][1]:
            continue  # another family: compare_schemas has said so
        expected, actual = _exact(want["history_types"][column], engine), _exact(have["types"][column], engine)
        if expected is not None and actual is not None and expected != actual:
            diffs.append(f"column {table}.{column} is {actual}, expected {expected}")
    return diffs


def _exact(type_: Any, engine: str) -> str | None:
    """The part of a type's DDL on `engine` that this comparison looks at (None: nothing to compare)."""
    import sqlalchemy as sa

    from project.core.authoring.column_types import dialects, engine_form, engine_type

    if engine not in dialects():
        return None
    try:
        resolved = engine_type(type_, engine)
    except Exception:  # a type this engine cannot take: the family comparison is all there is
        return None
    if isinstance(resolved, sa.Integer) and not isinstance(resolved, sa.Boolean):
        word = re.split(r"[\s(]", engine_form(resolved, engine), maxsplit=1)[0].upper()
        return {"INT": "INTEGER"}.get(word, word)
    if engine == "postgresql" and isinstance(resolved, sa.DateTime | sa.Time):
        return engine_form(type(resolved)(timezone=bool(resolved.timezone)), engine)
    return None


def _compare_defaults(table: str, want: dict[str, Any], have: dict[str, Any]) -> list[str]:
    diffs = []
    for column in sorted(want["defaults"].keys() & have["defaults"].keys()):
        expected, actual = want["defaults"][column], have["defaults"][column]
        if expected != actual:
            diffs.append(f"column {table}.{column} has {_default(actual)}, expected {_default(expected)}")
    return diffs


def _default(value: str | None) -> str:
    return "no server default" if value is None else f"server default {value!r}"


def _compare_enums(table: str, want: dict[str, Any], have: dict[str, Any], dialect: str) -> list[str]:
    if dialect == "sqlite":
        return []  # SQLite has no enum type: the values live in the application only
    diffs = []
    for column in sorted(want["enums"].keys() & have["columns"].keys()):
        expected, actual = want["enums"][column], have["enums"].get(column)
        if actual is None:
            diffs.append(f"column {table}.{column} is not an enum, expected enum ({', '.join(expected)})")
        elif set(expected) != set(actual):
            diffs.append(f"column {table}.{column} has enum values ({', '.join(actual)}), "
                         f"expected ({', '.join(expected)})")
    return diffs


def _compare_checks(table: str, want: dict[str, Any], have: dict[str, Any]) -> list[str]:
    missing = {text: name for text, name in want["checks"].items()
               if text not in have["checks"] and not _type_check(text, have["native"])}
    extra = {text: name for text, name in have["checks"].items() if text not in want["checks"]}
    diffs = []
    by_name = {name: text for text, name in extra.items() if name}
    for text, name in sorted(missing.items()):
        if name and name in by_name:  # the same constraint with another condition: one line, not two
            diffs.append(f"CHECK constraint {name} on {table} is ({by_name.pop(name)}), expected ({text})")
            extra = {t: n for t, n in extra.items() if n != name}
        else:
            diffs.append(f"CHECK constraint {_check(name, text)} on {table} is missing")
    diffs += [f"CHECK constraint {_check(name, text)} on {table} exists but no migration creates it"
              for text, name in sorted(extra.items())]
    return diffs


def _type_check(text: str, native: set[str]) -> bool:
    """The CHECK an Enum or Boolean type writes (`col in (...)`) on a column whose live type needs none."""
    match = re.fullmatch(r"(\w+) IN \(.*\)", text, flags=re.IGNORECASE)
    return bool(match and match.group(1) in native)


def _check(name: str | None, text: str) -> str:
    return f"{name} ({text})" if name else f"({text})"
