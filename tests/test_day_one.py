"""Day one on the core path: a new user goes from scripts/start_project.py to twelve revisions on three engines, a
squash, `migrate zero` and back, with nothing edited by hand and no engine disagreeing.

A library-loans service (authors, books, members, loans, reservations, tags) evolves over twelve `makemigrations`
runs on a copy of this work tree, as a team would write it: BigInteger keys, indexed foreign keys, a composite
index, unique constraints, the project's UTCDateTime, a timezone-aware DateTime with a server default, a Boolean
with sa.false(), JSON, a native enum, a TypeDecorator of the application's own, a NOT NULL column added with a
server default, a column dropped, a string widened, a table and a column renamed (answered "y" on a real
pseudo-terminal), a table dropped with its child. The generated files are never touched. Then, on each engine:
revision by revision with rows inserted between steps, the schema equal to the models' create_all() on a fresh
database (types exact: BIGINT, timestamptz), rows kept, inserts without an id, the app's /example endpoint and a
session query; `migrate zero` with rows and back; the squash of 0001..0012 giving the same schema on a fresh
database; showmigrations, and `check` (with and without --database) reporting nothing but the lock advisories
that the widening, the renames and SQLite's rebuilds call for.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pexpect
import pytest
import sqlalchemy as sa
from test_new_project import _ok, copy_work_tree, in_copy
from test_questioner import execute, rows
from test_squash import schema

from project.core.inspection.schema_compare import normalise_default

# --- the models, as the team writes them over twelve runs --------------------------------------------------------

MODELS_IMPORTS = '''
import datetime as dt
import enum
from typing import Any

from project.core.db import UTCDateTime
'''

# The header start_project.py leaves (Base and its naming convention) gets these imports, then the tables below.
MODELS_BODY = '''

# SQLAlchemy's documented BigInteger key: INTEGER on SQLite, the only type SQLite autoincrements.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class CardNumber(sa.types.TypeDecorator[str]):
    """A library card number, stored without spaces and upper case."""

    impl = sa.String(16)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else value.replace(" ", "").upper()


class BookStatus(enum.StrEnum):
    available = "available"{repairing}
    lost = "lost"


class Author(Base):
    __tablename__ = "authors"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    {author_name}: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, server_default=sa.func.now()){author_bio}


class Book(Base):
    __tablename__ = "books"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    author_id: Mapped[int] = mapped_column(sa.ForeignKey("authors.id"), index=True)
    title: Mapped[str] = mapped_column(sa.String({title_length}))
    isbn: Mapped[str] = mapped_column(sa.String(13), unique=True){book_status}{book_pages}
'''

MEMBERS = '''

class Member(Base):
    __tablename__ = "{members}"
    __table_args__ = (sa.UniqueConstraint("email"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(200))
    name: Mapped[str] = mapped_column(sa.String(100))
    active: Mapped[bool] = mapped_column(server_default=sa.false())
    joined_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now()){card}
'''

LOANS = '''

class Loan(Base):
    __tablename__ = "loans"
    # The desk lists a member's loans by date.
    __table_args__ = (sa.Index(None, "member_id", "lent_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    book_id: Mapped[int] = mapped_column(sa.ForeignKey("books.id"), index=True)
    member_id: Mapped[int] = mapped_column(sa.ForeignKey("{members}.id"), index=True)
    lent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime){details}
'''

TAGS = '''

class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(50), unique=True)


class BookTag(Base):
    __tablename__ = "book_tags"

    book_id: Mapped[int] = mapped_column(sa.ForeignKey("books.id"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(sa.ForeignKey("tags.id"), primary_key=True, index=True)
'''

RESERVATIONS = '''

class Reservation(Base):
    __tablename__ = "reservations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    book_id: Mapped[int] = mapped_column(sa.ForeignKey("books.id"), index=True)
    member_id: Mapped[int] = mapped_column(sa.ForeignKey("{members}.id"), index=True)
    reserved_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
'''


def library_models(state: int) -> str:
    """The tables of project/app/models.py after the team's `state`-th change (1..12), in the order they came."""
    members = "patrons" if state >= 10 else "members"  # 10: the table is renamed
    body = MODELS_BODY.format(
        author_name="full_name" if state >= 11 else "name",  # 11: the column is renamed
        author_bio="\n    bio: Mapped[str | None] = mapped_column(sa.Text)" if state < 9 else "",  # 9: dropped
        title_length=255 if state >= 9 else 100,  # 9: widened
        book_status=('\n    status: Mapped[BookStatus] = mapped_column(sa.Enum(BookStatus, name="book_status"), '
                     'server_default="available")') if state >= 5 else "",
        # 8: a value added to the enum, in the middle (PostgreSQL's TYPE gets it, MariaDB's column).
        repairing='\n    repairing = "repairing"' if state >= 8 else "",
        # 8: NOT NULL, added to a table with rows: the server default fills them.
        book_pages='\n    pages: Mapped[int] = mapped_column(server_default="0")' if state >= 8 else "")
    if state >= 2:
        body += MEMBERS.format(members=members,
                               card="\n    card: Mapped[str | None] = mapped_column(CardNumber)" if state >= 7 else "")
    if state >= 3:
        body += LOANS.format(members=members,
                             details="\n    details: Mapped[Any] = mapped_column(sa.JSON, nullable=True)"
                             if state >= 7 else "")
    if 4 <= state < 12:  # 12: tags and book_tags go together
        body += TAGS
    if state >= 6:
        body += RESERVATIONS.format(members=members)
    return body


# Each run: its message, and the questions the terminal asks (a rename is answered "y", in one release).
STEPS: list[tuple[str, list[tuple[str, str]]]] = [
    ("authors and books", []),
    ("members", []),
    ("loans", []),
    ("tags", []),
    ("book status", []),
    ("reservations", []),
    ("loan details and member cards", []),
    ("book pages and repairs", []),
    ("longer titles without author bios", []),
    ("members are patrons", [("Was the table members renamed to patrons? [y/N] ", "y")]),
    ("author full names", [("Was authors.name renamed to authors.full_name (a String)? [y/N] ", "y"),
                           ("Select an option: ", "1")]),  # in one release: the rename
    ("no more tags", []),
]

# Rows inserted after each revision, with ids of their own (from 1001, clear of PostgreSQL's sequences); 9's title
# needs the widened column.
ROWS: dict[int, list[str]] = {
    1: ["INSERT INTO authors (id, name, bio) VALUES (1001, 'Ann', 'wrote things')",
        "INSERT INTO books (id, author_id, title, isbn) VALUES (1001, 1001, 'First', '9780000000001')"],
    2: ["INSERT INTO members (id, email, name) VALUES (1001, 'bea@example.org', 'Bea')"],
    3: ["INSERT INTO loans (id, book_id, member_id, lent_at) VALUES (1001, 1001, 1001, '2024-01-02 03:04:05')"],
    4: ["INSERT INTO tags (id, name) VALUES (1001, 'novel')",
        "INSERT INTO book_tags (book_id, tag_id) VALUES (1001, 1001)"],
    5: ["INSERT INTO books (id, author_id, title, isbn, status) VALUES (1002, 1001, 'Second', '9780000000002', "
        "'lost')"],
    6: ["INSERT INTO reservations (id, book_id, member_id) VALUES (1001, 1002, 1001)"],
    7: ["INSERT INTO members (id, email, name, card) VALUES (1002, 'cid@example.org', 'Cid', 'AB12')",
        "INSERT INTO loans (id, book_id, member_id, lent_at, details) VALUES (1002, 1002, 1002, "
        "'2024-02-03 04:05:06', '{\"late\": true}')"],
    8: ["INSERT INTO books (id, author_id, title, isbn, pages) VALUES (1003, 1001, 'Third', '9780000000003', 300)"],
    9: [f"INSERT INTO books (id, author_id, title, isbn) VALUES (1004, 1001, '{'T' * 200}', '9780000000004')"],
    10: ["INSERT INTO patrons (id, email, name) VALUES (1003, 'dee@example.org', 'Dee')"],
    11: ["INSERT INTO authors (id, full_name) VALUES (1002, 'Eve')"],
    12: ["INSERT INTO reservations (id, book_id, member_id) VALUES (1002, 1003, 1003)"],
}

# One row without an id in each final table: the engine gives the key.
NEW_ROWS = [
    "INSERT INTO authors (full_name) VALUES ('Fay')",
    "INSERT INTO books (author_id, title, isbn) VALUES (1001, 'Fourth', '9780000000005')",
    "INSERT INTO patrons (email, name) VALUES ('gus@example.org', 'Gus')",
    "INSERT INTO loans (book_id, member_id, lent_at) VALUES (1001, 1003, '2024-03-04 05:06:07')",
    "INSERT INTO reservations (book_id, member_id) VALUES (1001, 1001)",
]
# What `check` warns about in the twelve files: (revision, rule, engine).
LOCK_WARNINGS = sorted([
    ("0008", "L208", "mysql"), ("0008", "L210", "sqlite"),  # "repairing" inserted before "lost": MariaDB copies
    ("0009", "L202", "postgresql"), ("0009", "L210", "sqlite"), ("0009", "L210", "sqlite"),  # authors, books
    ("0010", "L206", "postgresql"), ("0010", "L210", "sqlite"),  # the unique constraint renamed after the table
    # The foreign keys to the renamed table, dropped and created under their new names (loans, reservations).
    *[("0010", rule, engine) for rule, engine in (("L205", "postgresql"), ("L209", "mysql"), ("L210", "sqlite"))
      for _ in range(2)],
    ("0010", "L210", "sqlite"),  # the renamed table's primary key, renamed in SQLite's batch
    *[(revision, "L207", engine) for revision in ("0010", "0011") for engine in ("mysql", "postgresql", "sqlite")],
    ("0011", "L210", "sqlite"),
])
FINAL_TABLES = {"authors", "books", "patrons", "loans", "reservations"}
TOOL_TABLES = {"alembic_version", "alembic_migration_log", "alembic_migration_fleet"}  # the fleet: migrate made it


# --- the project: start_project.py, then twelve makemigrations runs (once for the three engines) ----------------


@dataclass
class Library:
    project: Path  # the twelve revisions
    squashed: Path  # the same, with `squashmigrations 0001 0012` run on it
    revisions: list[str]


def makemigrations_tty(project: Path, message: str, answers: list[tuple[str, str]]) -> str:
    """test_questioner's Project.makemigrations_tty, in the copy: expect each prompt, type its answer."""
    env = {**os.environ, "PYTHONPATH": str(project), "NO_COLOR": "1", "SETTINGS_MODULE": "dev", "TERM": "dumb"}
    child = pexpect.spawn(sys.executable, ["manage.py", "makemigrations", "-m", message], cwd=str(project), env=env,
                          encoding="utf-8", timeout=90)
    child.logfile_read = screen = io.StringIO()
    try:
        for prompt, answer in answers:
            child.expect_exact(prompt)
            child.sendline(answer)
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0, screen.getvalue()
    return screen.getvalue()


def only_lock_warnings(checked: str) -> None:
    """`check` found nothing but LOCK_WARNINGS, each shown as a warning (exit status 0: checked by _ok)."""
    lines = checked.splitlines()
    assert lines[-1] == f"System check identified {len(lines) - 1} issues (warnings only).", checked
    found = []
    for line in lines[:-1]:
        match = re.fullmatch(r"migrations/versions/(\d{4})_\w+\.py:\d+: (L2\d\d) (\w+): .*", line)
        found.append(match.groups() if match else ("not a lock warning", line, ""))
    assert sorted(found) == LOCK_WARNINGS, checked


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    project = copy_work_tree(tmp_path_factory.mktemp("day_one") / "project")
    _ok(in_copy(project, "scripts/start_project.py"))
    models = project / "project" / "app" / "models.py"
    header = models.read_text().replace("from sqlalchemy.orm import DeclarativeBase\n",
                                        "from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column\n")
    header = header.replace("import sqlalchemy as sa\n", MODELS_IMPORTS.lstrip() + "import sqlalchemy as sa\n", 1)
    versions = project / "migrations" / "versions"
    revisions = []
    for state, (message, answers) in enumerate(STEPS, start=1):
        models.write_text(header + library_models(state))
        if answers:
            written = makemigrations_tty(project, message, answers)
        else:
            written = _ok(in_copy(project, "manage.py", "makemigrations", "-m", message))
        [revision] = re.findall(rf"  - ({state:04d}_[0-9a-f]{{6}}) ", written)
        revisions.append(revision)
    assert len(list(versions.glob("*.py"))) == 12
    # The models and the history agree.
    assert _ok(in_copy(project, "manage.py", "makemigrations", "--check")).strip() == "No changes detected"
    # `check` shows the lock and rewrite advisories as warnings (docs/safety.md, "Locks and rewrites"): those of
    # the widened title (L202 on PostgreSQL is the documented over-report), the renames and SQLite's rebuilds.
    # Nothing else: no portability or graph problem in the generated files.
    only_lock_warnings(_ok(in_copy(project, "manage.py", "check")))
    sources = {path.name[:4]: path.read_text() for path in versions.glob("*.py")}
    assert "op.rename_table('members', 'patrons')" in sources["0010"]
    assert "new_column_name='full_name'" in sources["0011"]
    for source in sources.values():  # each file runs without the application: no import of its types
        assert "project.app" not in source and "UTCDateTime" not in source and "CardNumber" not in source

    squashed = tmp_path_factory.mktemp("day_one_squashed") / "project"
    shutil.copytree(project, squashed, symlinks=True)
    written = _ok(in_copy(squashed, "manage.py", "squashmigrations", "0001", "0012"))
    assert f"{revisions[-1]}_squashed_" in written, written
    return Library(project, squashed, revisions)


# --- on each engine ------------------------------------------------------------------------------------------


@pytest.fixture
def fresh_url(request: pytest.FixtureRequest, db_url: str, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Another empty database on db_url's engine, each call (dropped at the end)."""
    made: list[tuple[Any, str]] = []

    def make() -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        backend = sa.make_url(db_url).get_backend_name()
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / name}.db"
        server = request.getfixturevalue("pg_server" if backend == "postgresql" else "mysql_server")
        made.append((server, name))
        return str(server.create_database(name))

    yield make
    for server, name in made:
        try:
            server.drop_database(name)
        except Exception as error:  # cleanup must not mask the test result (as conftest's db_url)
            print(f"warning: could not drop test database {name}: {error}", file=sys.stderr)


def manage(project: Path, db_url: str, *args: str) -> str:
    """manage.py ARGS in the copy, with README's settings for the engine. PostgreSQL's are the production ones,
    which confirm destructive steps (the history drops a column and tables): the flag is the confirmation."""
    if args[0] == "migrate" and db_url.startswith("postgresql"):
        args = (*args, "--allow-destructive")
    return _ok(in_copy(project, "manage.py", *args, db_url=db_url))


def execute_utc(url: str, statement: str) -> None:
    """test_questioner's execute(), with the statement's naive timestamps read as UTC (UTCDateTime's convention):
    PostgreSQL would read them in its server's zone, the machine's own."""
    if not url.startswith("postgresql"):
        execute(url, statement)
        return
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("SET LOCAL TIME ZONE 'UTC'"))
            connection.execute(sa.text(statement))
    finally:
        engine.dispose()


def comparable(url: str) -> dict[str, Any]:
    """test_squash's reflected schema (columns in order with their exact types, keys, names of indexes and uniques,
    PostgreSQL's enum types), with each server default in one spelling: the files write sa.func.now() as
    CURRENT_TIMESTAMP, which PostgreSQL reflects as such, where create_all() writes now()."""
    found = schema(url)
    for table in found["tables"].values():
        table["columns"] = [(name, type_, nullable, normalise_default(default))
                            for name, type_, nullable, default in table["columns"]]
    # Names of foreign keys and primary keys too: after the table rename, makemigrations renames what the naming
    # convention derived from the old name (fk_loans_member_id_members, pk_members), as create_all() names them.
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            for name, table in found["tables"].items():
                table["pk name"] = inspector.get_pk_constraint(name).get("name")
    finally:
        engine.dispose()
    return found


def differences(expected: dict[str, Any], found: dict[str, Any]) -> list[str]:
    """What differs between two `comparable` schemas, one line each (empty: the same)."""
    lines = []
    if found["enums"] != expected["enums"]:
        lines.append(f"enum types: {found['enums']}, expected {expected['enums']}")
    for table in sorted(expected["tables"].keys() | found["tables"].keys()):
        want, have = expected["tables"].get(table), found["tables"].get(table)
        if want is None or have is None:
            lines.append(f"table {table}: {'missing' if have is None else 'not in the models'}")
            continue
        lines += [f"{table} {key}: {have[key]}, expected {want[key]}" for key in want if want[key] != have[key]]
    return lines


CREATE_ALL = """
import sys
import sqlalchemy as sa
from project.app.models import Base
engine = sa.create_engine(sys.argv[1])
Base.metadata.create_all(engine)
engine.dispose()
"""

# The application on the migrated database: its /example route through the request's session, and a session query
# on the models (the UTCDateTime column answers an aware datetime, the JSON column a dict).
SERVE = """
import json
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from project.app.main import create_app
from project.app.models import Book, Loan
from project.core.conf import load_settings
from project.core.db import engine_from_settings
with TestClient(create_app()) as client:
    example = client.get("/example")
engine = engine_from_settings(load_settings())
with Session(engine) as session:
    titles = session.scalars(sa.select(Book.title).order_by(Book.isbn)).all()
    loan = session.get(Loan, 1002)
    answer = {"example": example.status_code, "database": example.json()["database"], "titles": [t[:6] for t in titles],
              "lent_at": loan.lent_at.isoformat(), "details": loan.details}
engine.dispose()
print(json.dumps(answer))
"""


def test_day_one(library: Library, db_url: str, fresh_url: Callable[[], str]) -> None:
    project, backend = library.project, sa.make_url(db_url).get_backend_name()

    # Revision by revision, with rows going in between the steps.
    for state, revision in enumerate(library.revisions, start=1):
        assert f"Applying {revision} " in manage(project, db_url, "migrate", revision)
        for statement in ROWS[state]:
            execute_utc(db_url, statement)

    # The schema is what the final models create on a fresh database of the same engine.
    models_url = fresh_url()
    _ok(in_copy(project, "-c", CREATE_ALL, models_url))
    expected = comparable(models_url)
    assert expected["tables"].keys() == FINAL_TABLES
    assert differences(expected, comparable(db_url)) == []
    if backend == "postgresql":  # what `comparable` compares is the exact type
        types = {c[0]: c[1] for c in expected["tables"]["loans"]["columns"]}
        assert (types["id"], types["lent_at"]) == ("BIGINT", "TIMESTAMP WITH TIME ZONE")

    # The rows are kept: through the rename of their table and column, a widened title, new columns filled.
    assert rows(db_url, "SELECT id, full_name FROM authors ORDER BY id") == [(1001, "Ann"), (1002, "Eve")]
    assert rows(db_url, "SELECT id, status, pages, length(title) FROM books ORDER BY id") == [
        (1001, "available", 0, 5), (1002, "lost", 0, 6), (1003, "available", 300, 5), (1004, "available", 0, 200)]
    assert rows(db_url, "SELECT id, email, card FROM patrons ORDER BY id") == [
        (1001, "bea@example.org", None), (1002, "cid@example.org", "AB12"), (1003, "dee@example.org", None)]
    assert rows(db_url, "SELECT id, member_id FROM loans ORDER BY id") == [(1001, 1001), (1002, 1002)]
    assert rows(db_url, "SELECT id, book_id FROM reservations ORDER BY id") == [(1001, 1002), (1002, 1003)]
    assert rows(db_url, "SELECT count(*) FROM patrons WHERE active = false AND joined_at IS NOT NULL") == [(3,)]
    # Without an id: the key comes from the engine on every table (SQLite failed with a BIGINT key: NOT NULL).
    before = {table: rows(db_url, f"SELECT count(*) FROM {table}")[0][0] for table in FINAL_TABLES}
    for statement in NEW_ROWS:
        execute_utc(db_url, statement)
    for table in FINAL_TABLES:
        assert rows(db_url, f"SELECT count(*), count(DISTINCT id) FROM {table}") == [(before[table] + 1,) * 2], table

    served = json.loads(_ok(in_copy(project, "-c", SERVE, db_url=db_url)).splitlines()[-1])
    assert served == {"example": 200, "database": backend, "titles": ["First", "Second", "Third", "TTTTTT", "Fourth"],
                      "lent_at": "2024-02-03T04:05:06+00:00", "details": {"late": True}}

    # migrate zero with rows in every table, then up again: the same schema. The downgrade of 0009 takes the title
    # back to 100 characters, which PostgreSQL and MariaDB refuse for a longer value: that title is shortened first.
    execute(db_url, "UPDATE books SET title = 'Fifth' WHERE id = 1004")
    manage(project, db_url, "migrate", "zero")
    with sa.create_engine(db_url, poolclass=sa.pool.NullPool).connect() as connection:
        assert set(sa.inspect(connection).get_table_names()) == TOOL_TABLES
    manage(project, db_url, "migrate")
    assert differences(expected, comparable(db_url)) == []

    # showmigrations and check on the migrated database: every revision applied, nothing to report.
    shown = manage(project, db_url, "showmigrations")
    assert [line.split()[1] for line in shown.splitlines() if line.strip().startswith("[X]")] == library.revisions
    assert "[ ]" not in shown
    only_lock_warnings(manage(project, db_url, "check", "--database"))

    # The squash on a fresh database: run alone, the same schema, types exact.
    squash_url = fresh_url()
    applied = manage(library.squashed, squash_url, "migrate")
    assert re.findall(r"Applying (\S+) ", applied) == [library.revisions[-1]], applied
    assert "Squashed" in applied
    assert differences(expected, comparable(squash_url)) == []
    assert schema(squash_url) == schema(db_url)  # and the originals' own, every name and default's spelling included
    shown = manage(library.squashed, squash_url, "showmigrations")
    assert f"{library.revisions[-1]} squashes {library.revisions[0]}..{library.revisions[-1]} (12 revisions; " \
        "originals still present)" in shown, shown
    assert shown.count("[X]") == 12 and "[ ]" not in shown, shown
    for statement in NEW_ROWS:
        execute_utc(squash_url, statement.replace("1001", "1").replace("1003", "1"))
    only_lock_warnings(manage(library.squashed, squash_url, "check", "--database"))
