"""What makemigrations writes runs standalone on every engine and round-trips with rows in the tables.

Each test starts from an empty history with models of its own (test_questioner's Project), lets makemigrations
write the revisions, and migrates real databases up, down and up again (SQLite, MariaDB, PostgreSQL):
the project's and the application's column types, BigInteger keys, dropped columns and tables coming back
in a downgrade with the types, defaults and rows the history gave them, the order of drops, indexes that a
foreign key needs, and --dry-run showing the file's own code.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import run_manage
from test_questioner import MODELS_HEADER, Project, enum_types, execute, inspect, rows, up_zero_up

HEADER = MODELS_HEADER + '''
import project.core.db


class Guid(sa.types.TypeDecorator):
    """The application's own type, another type on PostgreSQL (SQLAlchemy's backend-agnostic GUID recipe)."""

    impl = sa.CHAR(32)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            from sqlalchemy.dialects import postgresql

            return dialect.type_descriptor(postgresql.UUID())
        return dialect.type_descriptor(sa.CHAR(32))

'''


class Fresh(Project):
    """A project with no revision yet."""

    def __init__(self, tmp_path: Path):
        super().__init__(tmp_path)
        for path in self.versions.glob("*.py"):
            path.unlink()

    def models(self, body: str, header: str = HEADER) -> None:
        super().models(body, header)

    def make(self, message: str, *args: str) -> str:
        """makemigrations --noinput; the new file's text."""
        before = set(self.versions.glob("*.py"))
        result = self.manage("makemigrations", "--noinput", "-m", message, *args)
        assert result.returncode == 0, result.stdout + result.stderr
        [path] = set(self.versions.glob("*.py")) - before
        return path.read_text()

    def clean(self) -> None:
        result = self.manage("makemigrations", "--check")
        assert result.returncode == 0, result.stdout + result.stderr


def columns(db_url: str, table: str) -> dict[str, dict]:
    return {c["name"]: c for c in inspect(db_url, lambda i: i.get_columns(table))}


def insert_defaults(db_url: str, table: str) -> None:
    """A row of defaults only (DEFAULT VALUES, or MySQL's () VALUES ())."""
    bind = sa.create_engine(db_url)
    try:
        with bind.begin() as connection:
            connection.execute(sa.table(table).insert())
    finally:
        bind.dispose()


def engine(db_url: str) -> str:
    return sa.make_url(db_url).get_backend_name()


# --- types: the project's, the application's, big keys --------------------------------------------------------

BOOKS = '''
sa.Table("books", Base.metadata,
         sa.Column("id", sa.Integer, primary_key=True),
         sa.Column("uid", Guid, nullable=False),
         sa.Column("added_at", project.core.db.UTCDateTime, nullable=False, server_default=sa.func.now()),
         sa.Column("cover", sa.LargeBinary))
'''
UID = "0123456789abcdef0123456789abcdef"


def test_project_and_application_types_run_standalone(tmp_path: Path, db_url: str) -> None:
    project = Fresh(tmp_path)
    project.models(BOOKS)
    source = project.make("books")
    project.migrate(db_url)  # no NameError: the file names nothing of the application's
    execute(db_url, f"INSERT INTO books (id, uid) VALUES (1, '{UID}')")
    found = columns(db_url, "books")
    if engine(db_url) == "postgresql":
        assert found["added_at"]["type"].timezone is True
        assert isinstance(found["uid"]["type"], sa.Uuid)
    project.clean()
    up_zero_up(project, db_url)
    # What the types are on the engines.
    assert "project.core" not in source and project.models_module not in source, source
    assert "sa.Column('uid', sa.CHAR(length=32).with_variant(sa.UUID(), 'postgresql'), nullable=False)" in source
    assert "sa.Column('added_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)')" \
        in source


KEYS = '''
sa.Table("loans", Base.metadata,
         sa.Column("id", sa.BigInteger, primary_key=True),
         sa.Column("returned", sa.Boolean, nullable=False, server_default=sa.false()))
'''


def test_big_keys_autoincrement_and_boolean_defaults(tmp_path: Path, db_url: str) -> None:
    project = Fresh(tmp_path)
    project.models(KEYS)
    source = project.make("loans")
    project.migrate(db_url)
    execute(db_url, "INSERT INTO loans (returned) VALUES (true)")  # no id (SQLite failed: NOT NULL constraint)
    insert_defaults(db_url, "loans")  # no id, no returned (PostgreSQL refused the file's integer default)
    assert rows(db_url, "SELECT id, returned FROM loans ORDER BY id") == [(1, True), (2, False)]
    found = columns(db_url, "loans")
    if engine(db_url) != "sqlite":
        assert isinstance(found["id"]["type"], sa.BigInteger)
    project.clean()
    up_zero_up(project, db_url)
    execute(db_url, "INSERT INTO loans (returned) VALUES (true)")
    assert rows(db_url, "SELECT id FROM loans") == [(1,)]
    assert "sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False)" in source
    assert "server_default=sa.false()" in source


# --- renames are asked whatever the types -----------------------------------------------------------------------

EVENTS = '''
sa.Table("{table}", Base.metadata,
         sa.Column("id", sa.Integer, primary_key=True),
         sa.Column("at", project.core.db.UTCDateTime, nullable=False),
         sa.Column("{column}", sa.String(100), nullable=False))
'''


def test_renames_are_asked_for_tables_with_project_types(tmp_path: Path, db_url: str) -> None:
    project = Fresh(tmp_path)
    project.models(EVENTS.format(table="events", column="title"))
    project.make("events")
    project.migrate(db_url)
    execute(db_url, "INSERT INTO events (id, at, title) VALUES (1, '2024-01-02 03:04:05', 'kept')")

    # The table, then its UTCDateTime column: each rename is asked (the types are the same on every engine).
    project.models(EVENTS.format(table="happenings", column="title"))
    status, screen = project.makemigrations_tty("-m", "rename table", answers=[
        ("Was the table events renamed to happenings? [y/N] ", "y")])
    assert status == 0, screen
    project.models(EVENTS.format(table="happenings", column="title").replace('"at"', '"happened_at"'))
    status, screen = project.makemigrations_tty("-m", "rename column", answers=[
        ("Was happenings.at renamed to happenings.happened_at (a UTCDateTime)? [y/N] ", "y"),
        ("Select an option: ", "1")])  # in one release: the rename
    assert status == 0, screen
    project.migrate(db_url)
    assert rows(db_url, "SELECT id, title FROM happenings WHERE happened_at IS NOT NULL") == [(1, "kept")]
    source = "".join(path.read_text() for path in sorted(project.versions.glob("000[23]_*.py")))
    assert "op.rename_table('events', 'happenings')" in source
    assert "new_column_name='happened_at'" in source
    assert "drop_table" not in source and "drop_column" not in source
    project.clean()
    project.migrate(db_url, "0001")
    assert rows(db_url, "SELECT id, title FROM events WHERE at IS NOT NULL") == [(1, "kept")]


SHELF = '''
sa.Table("authors", Base.metadata,
         sa.Column("id", sa.Integer, primary_key=True))
sa.Table("{table}", Base.metadata,
         sa.Column("id", sa.Integer, primary_key=True),
         sa.Column("author_id", sa.ForeignKey("authors.id"), index=True),
         sa.Column("title", sa.String(100), nullable=False))
'''


def test_a_renamed_table_keeps_no_name_of_its_old_one(tmp_path: Path, db_url: str) -> None:
    """The naming convention names a table's primary key and foreign keys after it: a renamed table's are renamed
    too, or a new table of the old name collides with them (PostgreSQL: relation "pk_books" already exists;
    MariaDB: a duplicate foreign key name)."""
    project = Fresh(tmp_path)
    project.models(SHELF.format(table="books"))
    project.make("books")
    project.migrate(db_url)
    execute(db_url, "INSERT INTO authors (id) VALUES (1)")
    execute(db_url, "INSERT INTO books (id, author_id, title) VALUES (1, 1, 'kept')")

    project.models(SHELF.format(table="volumes"))
    status, screen = project.makemigrations_tty("-m", "rename table", answers=[
        ("Was the table books renamed to volumes? [y/N] ", "y")])
    assert status == 0, screen
    project.migrate(db_url)
    assert rows(db_url, "SELECT id, title FROM volumes") == [(1, "kept")]
    key = inspect(db_url, lambda i: i.get_pk_constraint("volumes"))["name"]
    assert key == (None if engine(db_url) == "mysql" else "pk_volumes")  # MySQL: always PRIMARY, unreported
    assert [fk["name"] for fk in inspect(db_url, lambda i: i.get_foreign_keys("volumes"))] == \
        ["fk_volumes_author_id_authors"]
    project.clean()

    # A new table takes the old name, with the same constraints.
    project.models(SHELF.format(table="volumes") + SHELF.format(table="books").split("\n", 3)[3])
    project.make("books again")
    project.migrate(db_url)
    up_zero_up(project, db_url)
    project.migrate(db_url, "0002")  # the rename's downgrade gives the old names back
    assert [fk["name"] for fk in inspect(db_url, lambda i: i.get_foreign_keys("volumes"))] == \
        ["fk_volumes_author_id_authors"]
    project.migrate(db_url, "0001")
    assert [fk["name"] for fk in inspect(db_url, lambda i: i.get_foreign_keys("books"))] == \
        ["fk_books_author_id_authors"]


DUE = '''
sa.Table("loans", Base.metadata,
         sa.Column("id", sa.Integer, primary_key=True),
         sa.Column("due", {type}))
'''


def test_a_date_retyped_to_a_datetime_keeps_its_values(tmp_path: Path, db_url: str) -> None:
    """On SQLite the batch copies a retyped column with CAST(due AS DATETIME), whose NUMERIC affinity turned the
    stored text '2020-01-02' into the number 2020; every engine keeps that day."""
    project = Fresh(tmp_path)
    project.models(DUE.format(type="sa.Date"))
    project.make("loans")
    project.migrate(db_url)
    execute(db_url, "INSERT INTO loans (id, due) VALUES (1, '2020-01-02')")
    project.models(DUE.format(type="sa.DateTime(timezone=True)"))
    assert "type_=sa.DateTime(timezone=True)" in project.make("due is a moment")
    project.migrate(db_url)
    [(due,)] = rows(db_url, "SELECT due FROM loans")
    assert str(due).startswith("2020-01-02"), due
    project.migrate(db_url, "0001")
    [(due,)] = rows(db_url, "SELECT due FROM loans")
    assert str(due).startswith("2020-01-02"), due


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_retyped_column_gets_its_default_in_the_new_type(tmp_path: Path, db_url: str) -> None:
    """PostgreSQL keeps a column's default expression through ALTER COLUMN TYPE: a date retyped to timestamptz kept
    '2020-01-01'::date (read in the session's time zone) where the models give a timestamptz. The default is set
    again with the type, and back with the old type in the downgrade."""
    project = Fresh(tmp_path)
    project.models(DUE.format(type='sa.Date, server_default="2020-01-01"'))
    project.make("loans")
    project.migrate(db_url)
    project.models(DUE.format(type='sa.DateTime(timezone=True), server_default="2020-01-01"'))
    project.make("due is a moment")
    project.migrate(db_url)
    assert "timestamp with time zone" in columns(db_url, "loans")["due"]["default"]
    project.clean()
    project.migrate(db_url, "0001")
    assert columns(db_url, "loans")["due"]["default"] == "'2020-01-01'::date"


MOODS = '''
sa.Table("people", Base.metadata,
         sa.Column("id", sa.Integer, primary_key=True),
         sa.Column("mood", sa.Enum("calm", "busy", name="mood")))
'''
ROOMS = '''
sa.Table("rooms", Base.metadata,
         sa.Column("id", sa.Integer, primary_key=True),
         sa.Column("feel", sa.Enum("calm", "busy", name="mood"), index=True))
'''


def test_a_new_table_uses_an_enum_type_the_history_created(tmp_path: Path, db_url: str) -> None:
    """create_table creates its columns' enum types without a check: on PostgreSQL a new table with a type an
    earlier revision created failed with 'type "mood" already exists'. The type stays until no column uses it."""
    project = Fresh(tmp_path)
    project.models(MOODS)
    project.make("people")
    project.migrate(db_url)
    project.models(MOODS + ROOMS)
    project.make("rooms")
    project.migrate(db_url)
    execute(db_url, "INSERT INTO rooms (id, feel) VALUES (1, 'busy')")
    project.clean()
    project.migrate(db_url, "0001")
    execute(db_url, "INSERT INTO people (id, mood) VALUES (1, 'calm')")  # the type is still there
    up_zero_up(project, db_url)
    # The history reads that table's column as the enum it is: the last column of the type, dropped, takes the
    # type along, and comes back with it in the downgrade.
    project.models(ROOMS)
    project.make("no people")
    project.models(ROOMS.replace('"rooms"', '"halls"').replace("sa.Enum(\"calm\", \"busy\", name=\"mood\")",
                                                          "sa.String(10)"))
    downgrade = project.make("no moods").split("def downgrade")[1]
    assert "sa.Column('feel', sa.Enum('calm', 'busy', name='mood')" in downgrade, downgrade
    project.migrate(db_url)
    assert enum_types(db_url) == set()
    up_zero_up(project, db_url)


# --- what a downgrade re-creates: the history's types, defaults and filled rows -----------------------------

LIBRARY = '''
sa.Table("authors", Base.metadata,
         sa.Column("id", sa.Integer, primary_key=True),
         sa.Column("name", sa.String(100), nullable=False))
sa.Table("books", Base.metadata,
         sa.Column("id", sa.Integer, primary_key=True),
         sa.Column("author_id", sa.ForeignKey("authors.id"), nullable=False, index=True),
         sa.Column("title", sa.String(100), nullable=False, index=True),{extra}
         )
sa.Table("loans", Base.metadata,
         sa.Column("id", sa.Integer, primary_key=True),
         sa.Column("book_id", sa.ForeignKey("books.id"), nullable=False, index=True),
         sa.Column("note", sa.String(40), index=True))
'''
DROPPED = '''
         sa.Column("lent", sa.Boolean, nullable=False, server_default=sa.false()),
         sa.Column("cover", sa.LargeBinary),
         sa.Column("published", sa.DateTime(timezone=True)),
         sa.Column("shelf", sa.Enum("new", "old", name="book_shelf"), nullable=False, server_default="new"),
         sa.Column("pages", sa.Integer, nullable=False),
         sa.Column("scan", sa.LargeBinary, nullable=False),'''


def test_dropped_columns_come_back_as_the_history_made_them(tmp_path: Path, db_url: str) -> None:
    project = Fresh(tmp_path)
    project.models(LIBRARY.format(extra=DROPPED))
    project.make("library")
    project.migrate(db_url)
    execute(db_url, "INSERT INTO authors (id, name) VALUES (1, 'Ann')")
    execute(db_url, "INSERT INTO books (id, author_id, title, pages, scan) VALUES (1, 1, 'First', 120, '')")
    execute(db_url, "INSERT INTO loans (id, book_id, note) VALUES (1, 1, 'due')")
    before = columns(db_url, "books")

    project.models(LIBRARY.format(extra=""))
    source = project.make("drop columns")
    project.migrate(db_url)
    project.clean()
    project.migrate(db_url, "0001")  # the downgrade, with a row in books
    assert rows(db_url, "SELECT id, title, lent, pages, shelf FROM books") == [(1, "First", False, 0, "new")]
    after = columns(db_url, "books")
    for name in ("lent", "cover", "published", "shelf", "pages", "scan"):
        assert repr(after[name]["type"]) == repr(before[name]["type"]), name
        assert after[name]["nullable"] == before[name]["nullable"], name
        assert after[name]["default"] == before[name]["default"], name
    downgrade = source.split("def downgrade")[1]
    assert "sa.Column('lent', sa.Boolean(), server_default=sa.false(), nullable=False)" in downgrade
    assert "sa.Column('cover', sa.LargeBinary(), nullable=True)" in downgrade
    assert "sa.Column('published', sa.DateTime(timezone=True), nullable=True)" in downgrade
    assert "sa.Enum('new', 'old', name='book_shelf')" in downgrade
    # The NOT NULL column without a default comes back filled (the type's empty value), then loses the default.
    assert "sa.Column('pages', sa.Integer(), server_default='0', nullable=False)" in downgrade
    # A binary type's empty value is the empty string (bytea, BLOB): the row comes back (fuzzer, seed 29).
    assert "sa.Column('scan', sa.LargeBinary(), server_default='', nullable=False)" in downgrade
    project.migrate(db_url)
    up_zero_up(project, db_url)


TASKS = '''
sa.Table("tasks", Base.metadata,
         sa.Column("id", sa.Integer, primary_key=True),{extra}
         sa.Column("title", sa.String(100), nullable=False))
'''


def test_downgrade_value_asked_on_a_terminal(tmp_path: Path, db_url: str) -> None:
    project = Fresh(tmp_path)
    project.models(TASKS.format(extra='\n         sa.Column("priority", sa.Integer, nullable=False),'))
    project.make("tasks")
    project.migrate(db_url)
    execute(db_url, "INSERT INTO tasks (id, priority, title) VALUES (1, 5, 'write')")
    project.models(TASKS.format(extra=""))
    status, screen = project.makemigrations_tty("-m", "drop priority", answers=[
        ("Select an option: ", "1"), (">>> ", "'high'"), (">>> ", "7")])
    assert status == 0, screen
    assert "The downgrade adds back the NOT NULL column tasks.priority, which this revision drops" in screen
    assert " 2) Use '0', the column type's empty value" in screen
    project.migrate(db_url)
    project.migrate(db_url, "0001")
    assert rows(db_url, "SELECT id, priority, title FROM tasks") == [(1, 7, "write")]
    assert columns(db_url, "tasks")["priority"]["default"] is None, "the one-off value lingers"
    assert columns(db_url, "tasks")["priority"]["nullable"] is False


def test_dropping_a_parent_and_its_child_table(tmp_path: Path, db_url: str) -> None:
    project = Fresh(tmp_path)
    project.models(LIBRARY.format(extra=DROPPED))
    project.make("library")
    project.migrate(db_url)
    execute(db_url, "INSERT INTO authors (id, name) VALUES (1, 'Ann')")
    execute(db_url, "INSERT INTO books (id, author_id, title, pages, scan) VALUES (1, 1, 'First', 120, '')")
    execute(db_url, "INSERT INTO loans (id, book_id, note) VALUES (1, 1, 'due')")
    before = columns(db_url, "books")

    project.models(LIBRARY.format(extra="").split('sa.Table("books"')[0])  # only authors stays
    # The same models give the same file, whatever the order of Python's sets in that process (the hash seed).
    texts = []
    for seed in ("1", "2", "3", "4", "5") if engine(db_url) == "sqlite" else ("1",):
        for path in project.versions.glob("0002_*.py"):
            path.unlink()
        result = run_manage("makemigrations", "--noinput", "-m", "drop books and loans",
                            env={**project.env(), "PYTHONHASHSEED": seed})
        assert result.returncode == 0, result.stdout + result.stderr
        [path] = project.versions.glob("0002_*.py")
        texts.append(re.sub(r"Create Date: .*", "", path.read_text()))
    project.migrate(db_url)
    project.clean()
    project.migrate(db_url, "0001")  # the tables come back as the history made them (BLOB: no such type on PG)
    assert {i["name"] for i in inspect(db_url, lambda i: i.get_indexes("loans"))} >= {
        "ix_loans_book_id", "ix_loans_note"}
    after = columns(db_url, "books")
    assert {n: (repr(c["type"]), c["nullable"], c["default"]) for n, c in after.items()} == {
        n: (repr(c["type"]), c["nullable"], c["default"]) for n, c in before.items()}
    up_zero_up(project, db_url)
    assert all(text == texts[0] for text in texts)
    upgrade, downgrade = texts[0].split("def downgrade")
    assert upgrade.index("op.drop_table('loans')") < upgrade.index("op.drop_table('books')")
    assert downgrade.index("op.create_table('books'") < downgrade.index("op.create_table('loans'")
    assert "drop_index" not in upgrade, "drop_table takes the indexes along"


def test_downgrade_of_a_table_with_foreign_key_and_indexes(tmp_path: Path, db_url: str) -> None:
    """The generated downgrade drops the table, not its indexes first (MariaDB: "needed in a foreign key")."""
    project = Fresh(tmp_path)
    project.models(LIBRARY.format(extra="").split('sa.Table("loans"')[0])
    project.make("authors and books")
    project.models(LIBRARY.format(extra=""))
    source = project.make("loans")
    project.migrate(db_url)
    execute(db_url, "INSERT INTO authors (id, name) VALUES (1, 'Ann')")
    execute(db_url, "INSERT INTO books (id, author_id, title) VALUES (1, 1, 'First')")
    execute(db_url, "INSERT INTO loans (id, book_id, note) VALUES (1, 1, 'due')")
    project.migrate(db_url, "0001")
    assert rows(db_url, "SELECT id FROM books") == [(1,)]
    project.migrate(db_url, "zero")
    project.migrate(db_url)
    assert "drop_index" not in source.split("def downgrade")[1]


def test_index_a_foreign_key_still_needs(tmp_path: Path, db_url: str) -> None:
    """A model drops `index=True` from a foreign key column: the key is dropped and made again around the
    index's drop, which MySQL/MariaDB would refuse otherwise; `check` finds nothing to say about the file."""
    project = Fresh(tmp_path)
    project.models(LIBRARY.format(extra=""))
    project.make("library")
    project.migrate(db_url)
    execute(db_url, "INSERT INTO authors (id, name) VALUES (1, 'Ann')")
    execute(db_url, "INSERT INTO books (id, author_id, title) VALUES (1, 1, 'First')")

    project.models(LIBRARY.format(extra="").replace(
        'sa.ForeignKey("authors.id"), nullable=False, index=True', 'sa.ForeignKey("authors.id"), nullable=False'))
    if engine(db_url) == "sqlite":  # --concurrent-indexes leaves that drop between the key's drop and re-creation
        shown = project.manage("makemigrations", "--dry-run", "--concurrent-indexes")
        assert "drop_index" in shown.stdout and "autocommit_block" not in shown.stdout, shown.stdout + shown.stderr
    source = project.make("unindex author")
    project.migrate(db_url)
    execute(db_url, "INSERT INTO books (id, author_id, title) VALUES (2, 1, 'Second')")
    keys = inspect(db_url, lambda i: i.get_foreign_keys("books"))
    assert [(k["name"], k["constrained_columns"]) for k in keys] == [("fk_books_author_id_authors", ["author_id"])]
    if engine(db_url) != "sqlite":  # (SQLite enforces keys only where the connection asks)
        with pytest.raises(sa.exc.IntegrityError):
            execute(db_url, "INSERT INTO books (id, author_id, title) VALUES (3, 99, 'Orphan')")
    project.clean()
    up_zero_up(project, db_url)
    upgrade = source.split("def downgrade")[0]
    assert upgrade.index("drop_constraint(batch_op.f('fk_books_author_id_authors')") < upgrade.index(
        "drop_index(batch_op.f('ix_books_author_id'))") < upgrade.index("create_foreign_key(")
    checked = project.manage("check")
    assert "P113" not in checked.stdout + checked.stderr, checked.stdout + checked.stderr


COVERS = '''
sa.Table("authors", Base.metadata, sa.Column("id", sa.Integer, primary_key=True))
sa.Table("profiles", Base.metadata,
         sa.Column("id", sa.Integer, primary_key=True),
         sa.Column("author_id", sa.ForeignKey("authors.id"), nullable=False){unique})
'''


@pytest.mark.parametrize("db_url", ["mysql"], indirect=True)
def test_unique_constraint_a_foreign_key_still_needs(tmp_path: Path, db_url: str) -> None:
    """The same for the index behind a unique constraint (MariaDB refused its drop)."""
    project = Fresh(tmp_path)
    project.models(COVERS.format(unique=",\n         sa.UniqueConstraint(\"author_id\")"))
    project.make("profiles")
    project.migrate(db_url)
    execute(db_url, "INSERT INTO authors (id) VALUES (1)")
    execute(db_url, "INSERT INTO profiles (id, author_id) VALUES (1, 1)")
    project.models(COVERS.format(unique=""))
    source = project.make("not unique")
    project.migrate(db_url)
    execute(db_url, "INSERT INTO profiles (id, author_id) VALUES (2, 1)")
    keys = inspect(db_url, lambda i: i.get_foreign_keys("profiles"))
    assert [k["constrained_columns"] for k in keys] == [["author_id"]]
    project.clean()
    execute(db_url, "DELETE FROM profiles WHERE id = 2")
    up_zero_up(project, db_url)
    assert "drop_constraint(batch_op.f('uq_profiles_author_id'), type_='unique')" in source


# --- a change only some engines see -----------------------------------------------------------------------------

STAMPS = '''
sa.Table("stamps", Base.metadata,
         sa.Column("id", sa.Integer, primary_key=True),
         sa.Column("at", {type}, nullable=False))
'''


def test_timestamp_to_timestamptz_is_a_change(tmp_path: Path, db_url: str) -> None:
    """SQLite and MariaDB spell both DATETIME; PostgreSQL's columns differ, so the history's types count."""
    project = Fresh(tmp_path)
    project.models(STAMPS.format(type="sa.DateTime()"))
    project.make("stamps")
    project.migrate(db_url)
    execute(db_url, "INSERT INTO stamps (id, at) VALUES (1, '2024-01-02 03:04:05')")

    project.models(STAMPS.format(type="project.core.db.UTCDateTime"))
    checked = project.manage("makemigrations", "--check")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    source = project.make("aware stamps")
    assert "type_=sa.DateTime(timezone=True)" in source and "existing_type=sa.DateTime()" in source
    project.migrate(db_url)
    project.clean()
    aware = columns(db_url, "stamps")["at"]["type"]
    if engine(db_url) == "postgresql":
        assert aware.timezone is True
    assert rows(db_url, "SELECT id FROM stamps") == [(1,)]
    up_zero_up(project, db_url)


# --- a type PostgreSQL converts only when told how -------------------------------------------------------------

READINGS = """
sa.Table("readings", Base.metadata,
         sa.Column("id", sa.Integer, primary_key=True),
         sa.Column("code", {code}),
         sa.Column("flag", {flag}),
         sa.Column("size", {size}))
"""


def test_types_converted_with_a_cast_on_postgresql(tmp_path: Path, db_url: str) -> None:
    """String to Integer or Boolean, Boolean to Integer: PostgreSQL has no automatic cast for these and refuses
    ALTER COLUMN ... TYPE without USING ("cannot be cast automatically"); MariaDB and SQLite convert the values.
    The file gives PostgreSQL its USING, both ways, and the values arrive converted on every engine."""
    project = Fresh(tmp_path)
    project.models(READINGS.format(code="sa.String(10)", flag="sa.String(5)", size="sa.Boolean"))
    project.make("readings")
    project.migrate(db_url)
    execute(db_url, "INSERT INTO readings (id, code, flag, size) VALUES (1, '42', '1', '1'), (2, '7', '0', '0')")
    project.models(READINGS.format(code="sa.Integer", flag="sa.Boolean", size="sa.Integer"))
    source = project.make("typed")
    upgrade, downgrade = source.split("def downgrade")
    assert "postgresql_using='code::INTEGER'" in upgrade and "postgresql_using='flag::BOOLEAN'" in upgrade
    assert "postgresql_using='size::INTEGER'" in upgrade
    assert "postgresql_using='size::BOOLEAN'" in downgrade and "postgresql_using" not in downgrade.replace(
        "postgresql_using='size::BOOLEAN'", "")  # back to strings: PostgreSQL casts to text by itself
    project.migrate(db_url)
    project.clean()
    assert rows(db_url, "SELECT id, code, flag, size FROM readings ORDER BY id") == [(1, 42, True, 1), (2, 7, False, 0)]
    up_zero_up(project, db_url)


# --- a named enum's values -----------------------------------------------------------------------------------

LOANS = """
sa.Table("loans", Base.metadata,
         sa.Column("id", sa.Integer, primary_key=True),
         sa.Column("state", sa.Enum({values}, name="loan_state"), nullable=False, server_default="open"),
         sa.Column("previous", sa.Enum({values}, name="loan_state")))
"""


def enum_values(db_url: str) -> list[str]:
    """loan_state's values as the engine has them: PostgreSQL's TYPE, MariaDB's column; SQLite keeps none."""
    if engine(db_url) == "postgresql":
        return [value for (value,) in rows(
            db_url, "SELECT enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid "
                    "WHERE t.typname = 'loan_state' ORDER BY e.enumsortorder")]
    if engine(db_url) == "mysql":
        return list(columns(db_url, "loans")["state"]["type"].enums)
    return []


def test_enum_values_added_and_taken_back(tmp_path: Path, db_url: str) -> None:
    """A value added to a named enum (in the middle: the order is the models') reaches PostgreSQL's TYPE, not only
    MariaDB's column; the downgrade takes it back on every engine, and refuses while a row still holds it."""
    project = Fresh(tmp_path)
    project.models(LOANS.format(values="'open', 'closed'"))
    project.make("loans")
    project.migrate(db_url)
    execute(db_url, "INSERT INTO loans (id, previous) VALUES (1, 'closed')")
    project.models(LOANS.format(values="'open', 'overdue', 'closed'"))
    source = project.make("overdue")
    assert "ALTER TYPE loan_state ADD VALUE IF NOT EXISTS 'overdue' BEFORE 'closed'" in source
    project.migrate(db_url)
    project.clean()
    execute(db_url, "INSERT INTO loans (id, state, previous) VALUES (2, 'overdue', 'overdue')")
    assert rows(db_url, "SELECT id, state, previous FROM loans ORDER BY id") == [
        (1, "open", "closed"), (2, "overdue", "overdue")]
    if engine(db_url) != "sqlite":  # SQLite's non-native enum is a VARCHAR: no value is refused there
        assert enum_values(db_url) == ["open", "overdue", "closed"]
        refused = project.manage("migrate", "0001", "-v", "0", db_url=db_url)
        assert refused.returncode == 1 and "overdue" in refused.stderr, refused.stdout + refused.stderr
        assert enum_values(db_url) == ["open", "overdue", "closed"]
    execute(db_url, "DELETE FROM loans WHERE id = 2")
    project.migrate(db_url, "0001")
    if engine(db_url) != "sqlite":
        assert enum_values(db_url) == ["open", "closed"]
    # The default came back with the rebuilt type.
    execute(db_url, "INSERT INTO loans (id) VALUES (3)")
    assert rows(db_url, "SELECT id, state, previous FROM loans ORDER BY id") == [
        (1, "open", "closed"), (3, "open", None)]
    execute(db_url, "DELETE FROM loans WHERE id = 3")
    up_zero_up(project, db_url)


# --- --dry-run shows the file's code --------------------------------------------------------------------------


def test_dry_run_shows_what_the_file_holds(tmp_path: Path) -> None:
    project = Fresh(tmp_path)
    project.models(BOOKS)
    shown = project.manage("makemigrations", "--dry-run")
    assert shown.returncode == 0, shown.stderr
    source = project.make("books")
    body = source.split("def upgrade() -> None:\n")[1].split("\n\n\ndef downgrade")[0]
    code = [line.strip() for line in body.splitlines() if line.strip() and not line.strip().startswith("#")]
    shown_code = [line.strip() for line in shown.stdout.splitlines()[1:]
                  if line.strip() and not line.strip().startswith("#")]
    assert shown_code == code
    assert "server_default=sa.text('(CURRENT_TIMESTAMP)')" in shown.stdout
