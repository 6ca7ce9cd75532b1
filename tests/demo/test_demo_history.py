"""The demo application's own history and models (project/app, migrations/versions): the models match
the history, `check` finds nothing, rows survive every step on three engines, the drops are classified.

The tool's behaviour is tested on tests/fixture_app; these tests are about the demo as such, and go
with it (docs/start.md).
"""

from __future__ import annotations

from io import StringIO

import pytest
import sqlalchemy as sa
from conftest import run_manage

from project.core.db import create_engine_for
from project.core.history.scripts import script_directory
from project.core.inspection import destructive
from project.core.management import call_command

HEAD = "0008"
DIALECTS = ["sqlite", "mysql", "postgresql"]


def test_the_project_is_clean() -> None:
    result = run_manage("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "System check identified no issues."


def test_committed_models_match_history() -> None:
    # A URL that cannot connect: makemigrations must not need the settings' database.
    result = run_manage("makemigrations", "--check", env={"DEV_DATABASE_URL": "sqlite:////no/such/dir/x.db"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "No changes detected"


def migrate(*args: str, **options) -> str:
    out = StringIO()
    call_command("migrate", *args, stdout=out, **options)
    return out.getvalue()


def rows(engine: sa.Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def version(engine: sa.Engine) -> list[tuple]:
    return rows(engine, "SELECT version_num FROM alembic_version")


@pytest.fixture
def engine(settings):
    engine = create_engine_for(settings.DATABASE_URL)
    yield engine
    engine.dispose()


def test_rows_survive_up_down_up(settings, engine) -> None:
    migrate("0001")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO users (id, email, name) VALUES (1, 'ann@example.com', 'Ann')"))
        conn.execute(sa.text(
            "INSERT INTO posts (id, user_id, title, body, legacy_flag) VALUES "
            "(1, 1, 'Hello', 'first words', :t), (2, 1, 'Draft', NULL, :f)"
        ), {"t": True, "f": False})

    # 0002 adds a NOT NULL column to a table with rows: the server default fills them.
    migrate("0002")
    assert rows(engine, "SELECT id, email, name, is_active FROM users") == [(1, "ann@example.com", "Ann", True)]

    # 0003 widens users.name: a 150-character name now fits on every engine.
    migrate("0003")
    long_name = "x" * 150
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO users (id, email, name) VALUES (2, 'bob@example.com', :n)"), {"n": long_name})

    # 0004 renames posts.body; 0005 adds a unique constraint that now rejects duplicates.
    migrate("0005")
    assert rows(engine, "SELECT id, content FROM posts ORDER BY id") == [(1, "first words"), (2, None)]
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO users (id, email) VALUES (3, 'ann@example.com')"))

    # 0006 adds the enum (default draft); 0007 publishes posts with content; 0008 drops legacy_flag.
    migrate()
    assert version(engine) == [(HEAD,)]
    assert rows(engine, "SELECT id, title, content, status FROM posts ORDER BY id") == [
        (1, "Hello", "first words", "published"),
        (2, "Draft", None, "draft"),
    ]
    assert "legacy_flag" not in {c["name"] for c in sa.inspect(engine).get_columns("posts")}
    assert rows(engine, "SELECT id, email, name FROM users ORDER BY id") == [
        (1, "ann@example.com", "Ann"), (2, "bob@example.com", long_name),
    ]

    # Back to 0004: the enum and the unique constraint go, every row stays.
    out = migrate("0004")
    assert "Unapplying 0008 Drop posts.legacy_flag... OK" in out
    assert "Unapplying 0005" in out and "Unapplying 0004" not in out
    assert version(engine) == [("0004",)]
    assert rows(engine, "SELECT id, title, content FROM posts ORDER BY id") == [
        (1, "Hello", "first words"), (2, "Draft", None),
    ]
    assert rows(engine, "SELECT count(*) FROM users") == [(2,)]

    # Unapplying 0003 narrows users.name back to 50: MySQL and PostgreSQL refuse to truncate, so
    # shorten the long name first (issue: narrowing is what the safety checks flag).
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE users SET name = 'Bob' WHERE id = 2"))
    # zero drops everything but the version table; head again works (the PG enum type was dropped).
    migrate("zero")
    assert set(sa.inspect(engine).get_table_names()) == {
        "alembic_version", "alembic_migration_log", "alembic_migration_fleet"}
    assert version(engine) == []
    out = migrate("head")
    assert out.count("Applying") == 8
    assert version(engine) == [(HEAD,)]
    assert rows(engine, "SELECT count(*) FROM posts") == [(0,)]


@pytest.fixture(scope="module")
def history():
    script = script_directory()
    return {rev.revision: rev for rev in script.walk_revisions()}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_demo_history_is_classified_in_both_directions(history, dialect: str) -> None:
    classify = destructive.classify_revision
    assert classify(history["0008"], True, dialect) == ["drops column posts.legacy_flag"]
    assert classify(history["0001"], False, dialect) == ["drops table posts", "drops table users"]
    assert classify(history["0003"], False, dialect) == ["narrows users.name from VARCHAR(200) to VARCHAR(50)"]
    assert classify(history["0005"], False, dialect) == [
        "drops index ix_posts_title on posts", "drops unique constraint uq_users_email on users"]
    # Widening, renaming and an update() construct destroy nothing.
    for rev in ("0001", "0002", "0003", "0004", "0005", "0006", "0007"):
        assert classify(history[rev], True, dialect) == [], rev
    assert classify(history["0004"], False, dialect) == []
    assert classify(history["0007"], False, dialect) == []


def test_postgresql_enum_type_drop_sent_through_the_bind_is_seen(history) -> None:
    assert destructive.classify_revision(history["0006"], False, "postgresql") == [
        "drops column posts.status", "drops type post_status"]
