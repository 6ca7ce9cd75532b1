"""The generator: seeded model states and the changes a team makes between them.

`generate(seed, steps)` is pure: `random.Random(seed)` decides everything, so the same seed gives the same steps
(and the same models files) on any machine. Step 1 creates two or three tables; every later step applies one to
three changes, chosen among what a team does between two `makemigrations`: add or drop a table (a parent with
its children at times), add a nullable column, add a NOT NULL column with a server default, drop a column,
widen a string, add or drop an index or a unique constraint (one column or several), change a type, rename a
column or a table (answered "yes" on the questioner's prompt).

Column kinds: Integer and BigInteger keys and values, String, Text, Boolean, Numeric, Date, timezone-aware
DateTime (server default: the current time, in its three spellings), the project's own
`project.core.db.UTCDateTime`, an app-defined TypeDecorator (`Slug`), JSON, native enums (a Python enum class,
shared between columns as apps share them) and non-native ones, LargeBinary, foreign keys.

What the generator keeps valid (so a failure is the tool's, not the models'): names short enough for every
engine, indexes only on columns every engine can index (no TEXT/BLOB/JSON), a unique constraint only on a
column whose rows all hold different values (the harness inserts them so), a foreign key's type equal to the
referred key's, no type change a database cannot make without a USING clause.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field

KINDS = ("int", "bigint", "string", "text", "bool", "numeric", "date", "tstz", "utc", "slug", "json", "enum",
         "enum_plain", "binary")
# MySQL/MariaDB index no TEXT, BLOB or JSON column without a prefix length.
INDEXABLE = {"int", "bigint", "string", "bool", "numeric", "date", "tstz", "utc", "slug", "enum", "enum_plain", "fk"}
# Kinds whose inserted values are all different (the harness's counter): a unique constraint can be added later.
UNIQUABLE = {"int", "bigint", "string", "slug", "date", "numeric"}
DEFAULTABLE = ("int", "bigint", "string", "text", "bool", "numeric", "date", "tstz", "utc", "slug", "enum",
               "enum_plain")

# Native enums are Python enum classes (names equal values), reused between columns as an app reuses them:
# one PostgreSQL type, several columns.
NATIVE_ENUMS = {"Colour": ("red", "green", "blue"), "Size": ("small", "medium", "large"), "Mood": ("calm", "busy")}
PLAIN_ENUMS = {"grade": ("low", "high"), "channel": ("web", "phone", "desk")}

TABLE_NAMES = ("books", "loans", "members", "authors", "shelves", "branches", "reviews", "events", "fines",
               "copies", "genres", "tags", "notes", "visits", "invoices", "tickets", "badges", "rooms")
COLUMN_NAMES = ("title", "label", "code", "summary", "amount", "price", "rating", "weight", "opened_on",
                "due_on", "created_at", "seen_at", "active", "archived", "payload", "details", "colour",
                "isbn", "email", "phone", "city", "body", "photo", "digest", "score", "stock", "handle", "motto",
                "remark", "size", "mood", "grade", "channel", "starts_on", "paid", "total", "nickname")

TIME_DEFAULTS = ("sa.func.now()", "sa.func.current_timestamp()", 'sa.text("CURRENT_TIMESTAMP")')


@dataclass
class Column:
    name: str
    kind: str
    nullable: bool = True
    length: int | None = None  # string, slug
    numeric: tuple[int, int] | None = None  # precision, scale
    default: str | None = None  # the server_default argument, as Python source
    enum: str | None = None  # the Python enum class (enum) or the enum's name (enum_plain)
    ref: str | None = None  # fk: the referred table
    ref_big: bool = False  # fk: the referred key is a BigInteger
    index: bool = False
    unique: bool = False
    distinct: bool = True  # every row holds its own value or NULL: a unique constraint can be added


@dataclass
class Table:
    name: str
    big_pk: bool
    columns: list[Column] = field(default_factory=list)
    indexes: list[tuple[str, ...]] = field(default_factory=list)  # sa.Index(None, ...) of several columns
    uniques: list[tuple[str, ...]] = field(default_factory=list)  # sa.UniqueConstraint(...) of several columns

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def names(self) -> set[str]:
        return {"id", *(c.name for c in self.columns)}


@dataclass
class Step:
    """One `makemigrations`: the models after it and what the team changed to get there."""

    number: int
    tables: list[Table] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)  # what the team did, in words
    kinds: list[str] = field(default_factory=list)  # the same, as the generator's change names
    table_renames: dict[str, str] = field(default_factory=dict)  # old name -> new name
    column_renames: dict[tuple[str, str], str] = field(default_factory=dict)  # (table after renames, old) -> new
    retyped: set[tuple[str, str]] = field(default_factory=set)  # (table, column) whose stored values may change

    def table(self, name: str) -> Table | None:
        return next((t for t in self.tables if t.name == name), None)


def generate(seed: int, steps: int) -> list[Step]:
    """The seed's steps: the same seed, the same steps."""
    return _Generator(seed).run(steps)


class _Generator:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.tables: list[Table] = []
        self.used_tables: set[str] = set()  # never reuse a name: a drop and a create of one name is no rename

    def run(self, count: int) -> list[Step]:
        steps = []
        for number in range(1, count + 1):
            self.step = Step(number)
            self.fresh: set[str] = set()  # tables created in this step: the same step does not drop them
            self.touched: set[str] = set()  # tables changed in this step: no rename of them in the same step
            self.changed: set[tuple[str, str]] = set()  # columns changed in this step: no second change
            self.renamed = False  # one rename per step: the answers stay unambiguous
            # A table renamed in this step keeps its columns as they were: the questioner offers a table rename
            # only for the same columns (names and types), as Django's does.
            self.renamed_table: str | None = None
            # (table, column) names a drop or a rename freed in this step: reused at once, the schema would show
            # a changed column where the team made a new one.
            self.freed: set[tuple[str, str]] = set()
            if number == 1:
                for _ in range(self.rng.randint(2, 3)):
                    if self.add_table():
                        self.step.kinds.append("add_table")
            else:
                wanted = self.rng.randint(1, 3)
                done = 0
                for _ in range(30):  # some changes do not apply to every state: draw again
                    if done == wanted:
                        break
                    change = self.rng.choices(self.CHANGES, weights=self.WEIGHTS)[0]
                    if change(self):
                        done += 1
                        self.step.kinds.append(change.__name__)
            self.step.tables = copy.deepcopy(self.tables)
            steps.append(self.step)
        return steps

    # --- helpers ------------------------------------------------------------------------------------------

    def pick(self, items: list) -> object:
        return items[self.rng.randrange(len(items))] if items else None

    def old_tables(self) -> list[Table]:
        return [t for t in self.tables if t.name not in self.fresh]

    def new_table_name(self) -> str | None:
        free = [n for n in TABLE_NAMES if n not in self.used_tables]
        name = self.pick(free)
        if name:
            self.used_tables.add(name)
        return name

    def new_column(self, table: Table, kind: str | None = None, *, nullable: bool | None = None) -> Column | None:
        free = [n for n in COLUMN_NAMES if n not in table.names() and (table.name, n) not in self.freed]
        # No cycle of foreign keys: SQLAlchemy cannot order such tables (create_all, drop_all) without use_alter.
        others = [t for t in self.tables if t is not table and not self.refers_to(t, table.name)]
        if kind is None:
            kind = self.rng.choice(KINDS + (("fk",) * 2 if others else ()))
        if kind == "fk":
            parent = self.pick(others)
            if parent is None:
                return None
            name = f"{parent.name}_id"
            if name in table.names() or (table.name, name) in self.freed:
                return None
            column = Column(name, "fk", ref=parent.name, ref_big=parent.big_pk, distinct=False)
        else:
            name = self.pick(free)
            if name is None:
                return None
            column = Column(name, kind, distinct=kind in UNIQUABLE)
            if kind in ("string", "slug"):
                column.length = self.rng.choice((20, 40, 80))
            elif kind == "numeric":
                column.numeric = self.rng.choice(((8, 2), (10, 2), (12, 4)))
            elif kind == "enum":
                column.enum = self.rng.choice(sorted(NATIVE_ENUMS))
                column.distinct = False
            elif kind == "enum_plain":
                column.enum = self.rng.choice(sorted(PLAIN_ENUMS))
                column.distinct = False
        column.nullable = self.rng.random() < 0.5 if nullable is None else nullable
        return column

    def refers_to(self, table: Table, name: str) -> bool:
        """Whether `table` refers to the table `name`, directly or through others."""
        seen, todo = set(), [table]
        while todo:
            current = todo.pop()
            for column in current.columns:
                if column.ref == name:
                    return True
                parent = next((t for t in self.tables if t.name == column.ref), None)
                if parent is not None and parent.name not in seen:
                    seen.add(parent.name)
                    todo.append(parent)
        return False

    def server_default(self, column: Column) -> str:
        kind = column.kind
        if kind in ("tstz", "utc"):
            return self.rng.choice(TIME_DEFAULTS)
        if kind == "bool":
            return self.rng.choice(("sa.false()", "sa.true()"))
        if kind in ("int", "bigint", "numeric"):
            return self.rng.choice(('"0"', 'sa.text("0")'))
        if kind == "date":
            return '"2020-01-01"'
        if kind == "enum":
            return repr(NATIVE_ENUMS[column.enum or ""][0])
        if kind == "enum_plain":
            return repr(PLAIN_ENUMS[column.enum or ""][0])
        return '"none"'  # string, text, slug

    def note(self, text: str) -> bool:
        self.step.changes.append(text)
        return True

    # --- the changes --------------------------------------------------------------------------------------

    def add_table(self) -> bool:
        name = self.new_table_name()
        if name is None:
            return False
        table = Table(name, big_pk=self.rng.random() < 0.4)
        if self.tables and self.rng.random() < 0.5:
            fk = self.new_column(table, "fk")
            if fk:
                fk.index = self.rng.random() < 0.5
                table.columns.append(fk)
        for _ in range(self.rng.randint(2, 5)):
            column = self.new_column(table)
            if column is None:
                continue
            if column.kind in ("tstz", "utc") and self.rng.random() < 0.6:
                column.default, column.nullable, column.distinct = self.server_default(column), False, False
            roll = self.rng.random()
            if column.kind in UNIQUABLE and roll < 0.15:
                column.unique = True
            elif column.kind in INDEXABLE and roll < 0.4:
                column.index = True
            table.columns.append(column)
        indexable = [c.name for c in table.columns if c.kind in INDEXABLE]
        if len(indexable) >= 2 and self.rng.random() < 0.3:
            table.indexes.append(tuple(self.rng.sample(indexable, 2)))
        uniquable = [c.name for c in table.columns if c.kind in UNIQUABLE and c.distinct]
        if uniquable and len(indexable) >= 2 and self.rng.random() < 0.2:
            first = self.rng.choice(uniquable)
            table.uniques.append((first, self.rng.choice([n for n in indexable if n != first])))
        self.tables.append(table)
        self.fresh.add(name)
        self.touched.add(name)
        described = ", ".join([_describe(c) for c in table.columns]
                              + [f"index ({', '.join(group)})" for group in table.indexes]
                              + [f"unique ({', '.join(group)})" for group in table.uniques])
        return self.note(f"add table {name} ({'BigInteger' if table.big_pk else 'Integer'} id; {described})")

    def drop_table(self) -> bool:
        table = self.pick(self.old_tables())
        if table is None:
            return False
        doomed = {table.name}
        while True:  # its children go with it, and theirs
            children = {t.name for t in self.tables if any(c.ref in doomed for c in t.columns)} - doomed
            if not children:
                break
            doomed |= children
        if len(doomed) >= len(self.tables) or doomed & self.touched:
            return False
        self.tables = [t for t in self.tables if t.name not in doomed]
        self.touched |= doomed
        children = sorted(doomed - {table.name})
        return self.note(f"drop table {table.name}" + (f" and its children {', '.join(children)}" if children else ""))

    def add_column(self, not_null: bool = False) -> bool:
        table = self.pick([t for t in self.tables if t.name != self.renamed_table])
        if table is None:
            return False
        kind = self.rng.choice(DEFAULTABLE) if not_null else None
        column = self.new_column(table, kind, nullable=not not_null)
        if column is None:
            return False
        if not_null:
            column.default, column.distinct = self.server_default(column), False
        table.columns.append(column)
        self.mark(table, column)
        what = "NOT NULL column with a server default" if not_null else "nullable column"
        return self.note(f"add {what} {table.name}.{_describe(column)}")

    def add_not_null_column(self) -> bool:
        return self.add_column(not_null=True)

    def old_columns(self, keep=lambda table, column: True) -> list[tuple[Table, Column]]:
        return [(t, c) for t in self.old_tables() for c in t.columns
                if t.name != self.renamed_table and (t.name, c.name) not in self.changed and keep(t, c)]

    def mark(self, table: Table, column: Column) -> None:
        self.changed.add((table.name, column.name))
        self.touched.add(table.name)

    def drop_column(self) -> bool:
        found = self.pick(self.old_columns())
        if found is None:
            return False
        table, column = found
        table.columns.remove(column)
        self.freed.add((table.name, column.name))
        table.indexes = [i for i in table.indexes if column.name not in i]
        table.uniques = [u for u in table.uniques if column.name not in u]
        self.touched.add(table.name)
        return self.note(f"drop column {table.name}.{column.name}")

    def widen_string(self) -> bool:
        found = self.pick(self.old_columns(lambda t, c: c.kind in ("string", "slug")))
        if found is None:
            return False
        table, column = found
        before = column.length
        column.length = (column.length or 0) + self.rng.choice((10, 20, 60))
        self.mark(table, column)
        return self.note(f"widen {table.name}.{column.name} from {before} to {column.length} characters")

    def add_index(self) -> bool:
        table = self.pick(self.tables)
        if table is None:
            return False
        plain = [c for c in table.columns if c.kind in INDEXABLE and not (c.index or c.unique)]
        if plain and self.rng.random() < 0.6:
            column = self.rng.choice(plain)
            column.index = True
            self.touched.add(table.name)
            return self.note(f"add index on {table.name}.{column.name}")
        indexable = [c.name for c in table.columns if c.kind in INDEXABLE]
        if len(indexable) < 2:
            return False
        columns = tuple(self.rng.sample(indexable, 2))
        if columns in table.indexes:
            return False
        table.indexes.append(columns)
        self.touched.add(table.name)
        return self.note(f"add index on {table.name} ({', '.join(columns)})")

    def drop_index(self) -> bool:
        table = self.pick([t for t in self.old_tables() if t.indexes or any(c.index for c in t.columns)])
        if table is None:
            return False
        single = [c for c in table.columns if c.index]
        if single and (not table.indexes or self.rng.random() < 0.5):
            column = self.rng.choice(single)
            column.index = False
            self.touched.add(table.name)
            return self.note(f"drop index on {table.name}.{column.name}")
        columns = table.indexes.pop(self.rng.randrange(len(table.indexes)))
        self.touched.add(table.name)
        return self.note(f"drop index on {table.name} ({', '.join(columns)})")

    def add_unique(self) -> bool:
        table = self.pick(self.tables)
        if table is None:
            return False
        candidates = [c for c in table.columns if c.kind in UNIQUABLE and c.distinct and not (c.index or c.unique)]
        if candidates and self.rng.random() < 0.6:
            column = self.rng.choice(candidates)
            column.unique = True
            self.touched.add(table.name)
            return self.note(f"add unique constraint on {table.name}.{column.name}")
        firsts = [c.name for c in table.columns if c.kind in UNIQUABLE and c.distinct]
        others = [c.name for c in table.columns if c.kind in INDEXABLE]
        if not firsts:
            return False
        first = self.rng.choice(firsts)
        rest = [n for n in others if n != first]
        if not rest:
            return False
        columns = (first, self.rng.choice(rest))
        if columns in table.uniques:
            return False
        table.uniques.append(columns)
        self.touched.add(table.name)
        return self.note(f"add unique constraint on {table.name} ({', '.join(columns)})")

    def drop_unique(self) -> bool:
        table = self.pick([t for t in self.old_tables() if t.uniques or any(c.unique for c in t.columns)])
        if table is None:
            return False
        single = [c for c in table.columns if c.unique]
        if single and (not table.uniques or self.rng.random() < 0.5):
            column = self.rng.choice(single)
            column.unique = False
            self.touched.add(table.name)
            return self.note(f"drop unique constraint on {table.name}.{column.name}")
        columns = table.uniques.pop(self.rng.randrange(len(table.uniques)))
        self.touched.add(table.name)
        return self.note(f"drop unique constraint on {table.name} ({', '.join(columns)})")

    def change_type(self) -> bool:
        def in_composite(table: Table, column: Column) -> bool:
            return any(column.name in group for group in (*table.indexes, *table.uniques))

        def changeable(table: Table, column: Column) -> bool:
            if column.kind in ("int", "numeric", "date", "tstz", "text"):
                return True
            # TEXT cannot be indexed on MySQL: only a string no index or unique constraint covers
            return column.kind == "string" and not (column.index or column.unique or in_composite(table, column))

        found = self.pick(self.old_columns(changeable))
        if found is None:
            return False
        table, column = found
        before = _type_source(column)
        if column.kind == "int":
            column.kind = "bigint"
        elif column.kind == "numeric":
            precision, scale = column.numeric or (10, 2)
            column.numeric = (precision + 4, scale)
        elif column.kind == "date":
            column.kind, column.distinct = "tstz", column.distinct and column.default is None
        elif column.kind == "tstz":
            column.kind = "utc"  # the same column type in the database: no migration is due
        elif column.kind == "text":
            column.kind, column.length = "string", 200
        elif self.rng.random() < 0.5:
            column.kind, column.length = "text", None
        else:
            column.kind = "slug"  # the app's TypeDecorator over the same String: no migration is due
        self.mark(table, column)
        self.step.retyped.add((table.name, column.name))
        return self.note(f"change the type of {table.name}.{column.name} from {before} to {_type_source(column)}")

    def rename_column(self) -> bool:
        if self.renamed:
            return False
        found = self.pick(self.old_columns(lambda t, c: t.name not in self.touched))
        if found is None:
            return False
        table, column = found
        new = self.pick([n for n in COLUMN_NAMES if n not in table.names() and (table.name, n) not in self.freed])
        if new is None:
            return False
        old = column.name
        self.freed.add((table.name, old))
        column.name = new
        table.indexes = [tuple(new if n == old else n for n in group) for group in table.indexes]
        table.uniques = [tuple(new if n == old else n for n in group) for group in table.uniques]
        self.step.column_renames[(table.name, old)] = new
        self.renamed = True
        self.mark(table, column)
        return self.note(f"rename column {table.name}.{old} to {new} (a {_type_source(column)})")

    def rename_table(self) -> bool:
        if self.renamed:
            return False
        table = self.pick([t for t in self.old_tables() if t.name not in self.touched])
        if table is None:
            return False
        new = self.new_table_name()
        if new is None:
            return False
        old = table.name
        table.name = new
        for other in self.tables:
            for column in other.columns:
                if column.ref == old:
                    column.ref = new
        self.step.table_renames[old] = new
        self.renamed = True
        self.renamed_table = new
        self.touched.add(new)
        return self.note(f"rename table {old} to {new}")

    CHANGES = (add_table, drop_table, add_column, add_not_null_column, drop_column, widen_string, add_index,
               drop_index, add_unique, drop_unique, change_type, rename_column, rename_table)
    WEIGHTS = (2, 1, 3, 2, 2, 1.5, 1.5, 1, 1, 1, 2, 1.5, 1)


# --- rendering ------------------------------------------------------------------------------------------------

# What the models module adds to the scaffold's (start_project.py's project/app/models.py): the imports, the
# app's own TypeDecorator and the Python enum classes.
PREAMBLE = '''
import datetime as dt
import decimal
import enum
from typing import Any

from sqlalchemy.orm import Mapped, mapped_column

from project.core.db import UTCDateTime


class Slug(sa.types.TypeDecorator[str]):
    """The app's own column type: a slug, kept lower-case, stored as a string."""

    impl = sa.String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return value.lower() if value is not None else None
'''

PYTHON_TYPES = {"int": "int", "bigint": "int", "fk": "int", "string": "str", "text": "str", "slug": "str",
                "enum_plain": "str", "bool": "bool", "numeric": "decimal.Decimal", "date": "dt.date",
                "tstz": "dt.datetime", "utc": "dt.datetime", "json": "dict[str, Any]", "binary": "bytes"}


def render(tables: list[Table], header: str) -> str:
    """The models module: the scaffold's `header` (its Base and naming convention), then the tables."""
    parts = [header.rstrip() + "\n", PREAMBLE]
    for name, values in NATIVE_ENUMS.items():
        members = "".join(f"    {v} = {v!r}\n" for v in values)
        parts.append(f"\nclass {name}(enum.StrEnum):\n{members}")
    for table in tables:
        parts.append("\n" + _render_table(table))
    return "\n".join(parts)


def _render_table(table: Table) -> str:
    lines = [f"class {_class_name(table.name)}(Base):", f"    __tablename__ = {table.name!r}"]
    args = [f"sa.Index(None, {', '.join(map(repr, group))})" for group in table.indexes]
    args += [f"sa.UniqueConstraint({', '.join(map(repr, group))})" for group in table.uniques]
    if args:
        lines.append(f"    __table_args__ = ({', '.join(args)},)")
    lines.append("")
    lines.append(f"    id: Mapped[int] = mapped_column({'sa.BigInteger, ' if table.big_pk else ''}primary_key=True)")
    for column in table.columns:
        python = column.enum if column.kind == "enum" else PYTHON_TYPES[column.kind]
        annotation = f"{python} | None" if column.nullable else python
        arguments = [_type_source(column)]
        if column.kind == "fk":
            arguments.append(f"sa.ForeignKey({column.ref + '.id'!r})")
        if column.default is not None:
            arguments.append(f"server_default={column.default}")
        if column.index:
            arguments.append("index=True")
        if column.unique:
            arguments.append("unique=True")
        lines.append(f"    {column.name}: Mapped[{annotation}] = mapped_column({', '.join(arguments)})")
    return "\n".join(lines) + "\n"


def _class_name(table: str) -> str:
    return "".join(part.capitalize() for part in table.split("_"))


def _type_source(column: Column) -> str:
    kind = column.kind
    if kind in ("int", "bigint"):
        return "sa.BigInteger" if kind == "bigint" else "sa.Integer"
    if kind == "fk":
        return "sa.BigInteger" if column.ref_big else "sa.Integer"
    if kind == "string":
        return f"sa.String({column.length})"
    if kind == "slug":
        return f"Slug({column.length})"
    if kind == "numeric":
        return f"sa.Numeric{column.numeric}"
    if kind == "enum":
        return f"sa.Enum({column.enum}, name={(column.enum or '').lower()!r})"
    if kind == "enum_plain":
        values = ", ".join(map(repr, PLAIN_ENUMS[column.enum or ""]))
        return f"sa.Enum({values}, name={column.enum!r}, native_enum=False)"
    return {"text": "sa.Text", "bool": "sa.Boolean", "date": "sa.Date", "tstz": "sa.DateTime(timezone=True)",
            "utc": "UTCDateTime", "json": "sa.JSON", "binary": "sa.LargeBinary"}[kind]


def _describe(column: Column) -> str:
    flags = [] if column.nullable else ["NOT NULL"]
    if column.default:
        flags.append(f"default {column.default}")
    if column.index:
        flags.append("index")
    if column.unique:
        flags.append("unique")
    return f"{column.name} {_type_source(column)}" + (f" [{', '.join(flags)}]" if flags else "")
