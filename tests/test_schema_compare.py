"""`check --database` also compares server defaults, enum values and CHECK constraints (inspection.schema_compare).

On each engine the fixture history plus a revision adding a CHECK is migrated and found clean (each engine spells
defaults, enums and CHECKs its own way), then a default, an enum value (where the engine has enums) and the CHECK
are changed by hand and each change is reported. The normalisers are pinned on the spellings the engines use.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from migcopy import fixture_copy

from project.core.db import create_engine_for
from project.core.inspection.schema_compare import normalise_check, normalise_default

# A CHECK of its own, and the CHECKs an Enum and a Boolean write with create_constraint=True: SQLite and MariaDB
# get the Boolean's, SQLite the Enum's, PostgreSQL neither (its enum and boolean types need none).
ADD_CHECK = """
with op.batch_alter_table("projects") as batch_op:
    batch_op.create_check_constraint(op.f("ck_projects_slug_filled"), "length(slug) > 0")
op.create_table(
    "labels",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("archived", sa.Boolean(create_constraint=True, name="archived_bool"), server_default=sa.false(),
              nullable=False),
    sa.Column("colour", sa.Enum("red", "blue", name="label_colour", create_constraint=True), nullable=True),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_labels")),
)
"""
DROP_CHECK = """
op.drop_table("labels")
sa.Enum(name="label_colour").drop(op.get_bind(), checkfirst=True)
with op.batch_alter_table("projects") as batch_op:
    batch_op.drop_constraint(op.f("ck_projects_slug_filled"), type_="check")
"""


def _database_lines(copy, db_url: str) -> list[str]:
    """What `check --database` says about the live database (the labels table is in no model: those lines go)."""
    result = copy.manage("check", "--database", db_url=db_url, in_process=True)
    assert "Traceback" not in result.stdout + result.stderr
    return sorted(line for line in result.stdout.splitlines() if line.startswith("database"))


def test_drifted_default_enum_and_check_are_reported(db_url: str, tmp_path: Path) -> None:
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", upgrade=ADD_CHECK, downgrade=DROP_CHECK, message="projects slug filled")
    assert copy.manage("migrate", "-v0", db_url=db_url, in_process=True).returncode == 0
    assert _database_lines(copy, db_url) == []

    dialect = sa.make_url(db_url).get_backend_name()
    engine = create_engine_for(db_url)
    try:
        with engine.begin() as connection:  # someone changed the database by hand
            op = Operations(MigrationContext.configure(connection))
            with op.batch_alter_table("projects") as batch_op:
                batch_op.alter_column("is_active", existing_type=sa.Boolean(), existing_nullable=False,
                                      server_default="0")
                batch_op.drop_constraint("ck_projects_slug_filled", type_="check")
                batch_op.create_check_constraint("ck_projects_slug_filled", "length(slug) > 1")
            if dialect == "postgresql":
                connection.execute(sa.text("ALTER TYPE task_state ADD VALUE 'archived'"))
            elif dialect == "mysql":
                connection.execute(sa.text(
                    "ALTER TABLE tasks MODIFY state ENUM('open','done','archived') NOT NULL DEFAULT 'open'"))
    finally:
        engine.dispose()

    lines = _database_lines(copy, db_url)
    expected = [
        "database at 0009: CHECK constraint ck_projects_slug_filled on projects is (LENGTH(slug) > 1), "
        "expected (LENGTH(slug) > 0)",
        "database at 0009: column projects.is_active has server default '0', expected server default '1'",
    ]
    if dialect != "sqlite":  # SQLite has no enum type: nothing to compare there
        expected.append("database at 0009: column tasks.state has enum values (open, done, archived), "
                        "expected (open, done)")
    assert lines == sorted(expected)


def test_a_check_added_by_hand_is_reported(db_url: str, tmp_path: Path) -> None:
    copy = fixture_copy(tmp_path)
    assert copy.manage("migrate", "-v0", db_url=db_url, in_process=True).returncode == 0
    engine = create_engine_for(db_url)
    try:
        with engine.begin() as connection:
            with Operations(MigrationContext.configure(connection)).batch_alter_table("tasks") as batch_op:
                batch_op.create_check_constraint("ck_tasks_title_long", "length(title) > 3")
    finally:
        engine.dispose()
    assert _database_lines(copy, db_url) == [
        "database at 0008: CHECK constraint ck_tasks_title_long (LENGTH(title) > 3) on tasks exists but no "
        "migration creates it"]


@pytest.mark.parametrize(("spelling", "family", "normal"), [
    ("'1'", "integer", "1"), ("true", "integer", "1"), ("false", "integer", "0"), ("'0'::integer", "integer", "0"),
    ("('0.00')", "numeric", "0"), ("'open'::task_state", "string", "open"),
    ("'it''s'::character varying", "string", "it's"), ("(CURRENT_TIMESTAMP)", "datetime", "CURRENT_TIMESTAMP"),
    ("now()", "datetime", "CURRENT_TIMESTAMP"), ("current_timestamp()", "datetime", "CURRENT_TIMESTAMP"),
    ("current_timestamp(6)", "datetime", "CURRENT_TIMESTAMP"), ("NULL", "string", None),
    ("nextval('projects_id_seq'::regclass)", "integer", None), (None, "string", None),
])
def test_default_spellings(spelling: str | None, family: str, normal: str | None) -> None:
    assert normalise_default(spelling, family) == normal


@pytest.mark.parametrize(("dialect", "text"), [
    ("sqlite", "id > 0"), ("sqlite", '"id" > 0'), ("postgresql", "(id > 0)"), ("postgresql", "((id)::integer > 0)"),
    ("mysql", "`id` > 0"), ("mysql", "(`id` > 0)"),
])
def test_check_spellings(dialect: str, text: str) -> None:
    assert normalise_check(text, dialect) == "id > 0"


def test_check_in_spellings() -> None:
    pg = "((state)::text = ANY ((ARRAY['open'::character varying, 'done'::character varying])::text[]))"
    assert normalise_check(pg, "postgresql") == normalise_check("state IN ('open', 'done')", "sqlite") \
        == normalise_check("`state` in ('open','done')", "mysql") == "state IN ('open', 'done')"


def test_check_parentheses_that_matter_are_kept() -> None:
    assert normalise_check("(a > 0) AND ((b < 5) OR (c = 1))", "postgresql") == "a > 0 AND (b < 5 OR c = 1)"
    assert normalise_check("(a > 0 AND b < 5) OR c = 1", "sqlite") != normalise_check(
        "a > 0 AND (b < 5 OR c = 1)", "sqlite")


@pytest.mark.parametrize(("dialect", "text"), [
    ("sqlite", "length(slug) > 0"), ("mysql", "octet_length(`slug`) > 0"), ("postgresql", "(length((slug)::text) > 0)"),
])
def test_check_function_spellings(dialect: str, text: str) -> None:
    assert normalise_check(text, dialect) == "LENGTH(slug) > 0"


def test_differences_against_another_revision(fixture_settings) -> None:
    """The function `repair` and `--fake-initial` call: a database at 0008 against what 0005 produces."""
    from project import migrate_database
    from project.core.db import settings_connection
    from project.core.inspection.schema_compare import database_differences

    migrate_database(fixture_settings)
    with settings_connection(fixture_settings) as connection:
        assert database_differences(connection, fixture_settings, "0008") == []
        assert sorted(database_differences(connection, fixture_settings, "0005")) == [
            "column tasks.legacy_flag is missing",
            "column tasks.state exists but no migration creates it",
        ]


def test_check_literals_keep_their_case() -> None:
    assert normalise_check("state IN ('Open')", "sqlite") != normalise_check("state IN ('open')", "sqlite")


EXACT_TYPES = """
op.create_table(
    "loans",
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
    sa.Column("copies", sa.BigInteger(), nullable=True),
    sa.Column("lent_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column("details", sa.JSON(), nullable=True),
    sa.Column("returned", sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column("small", sa.SmallInteger(), nullable=True),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_loans")),
)
"""


def test_exact_types_clean_then_a_narrowed_integer_and_a_naive_timestamp_are_reported(db_url: str,
                                                                                       tmp_path: Path) -> None:
    """BIGINT, timestamptz, JSON (LONGTEXT + json_valid on MariaDB) and booleans as the history made them are no
    difference on any engine; an INT where the history says BIGINT is one on every engine, a timestamp without
    time zone where it says timestamptz on PostgreSQL (the only engine that keeps the flag)."""
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", upgrade=EXACT_TYPES, downgrade='op.drop_table("loans")', message="loans")
    assert copy.manage("migrate", "-v0", db_url=db_url, in_process=True).returncode == 0
    assert _database_lines(copy, db_url) == []

    dialect = sa.make_url(db_url).get_backend_name()
    engine = create_engine_for(db_url)
    try:
        with engine.begin() as connection:  # someone changed the database by hand
            op = Operations(MigrationContext.configure(connection))
            with op.batch_alter_table("loans") as batch_op:
                batch_op.alter_column("copies", type_=sa.Integer(), existing_type=sa.BigInteger(),
                                      existing_nullable=True)
                batch_op.alter_column("lent_at", type_=sa.DateTime(timezone=False),
                                      existing_type=sa.DateTime(timezone=True), existing_nullable=False,
                                      existing_server_default=sa.func.now())
    finally:
        engine.dispose()
    expected = ["database at 0009: column loans.copies is INTEGER, expected BIGINT"]
    if dialect == "postgresql":
        expected.append("database at 0009: column loans.lent_at is TIMESTAMP WITHOUT TIME ZONE, expected "
                        "TIMESTAMP WITH TIME ZONE")
    assert _database_lines(copy, db_url) == sorted(expected)
