"""Destructive steps: classified from Alembic's operation objects and sqlglot, marked in plans, refused in prod."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from migcopy import MigrationsCopy, one_clean_line

from project.core import migrator, safety

DIALECTS = ["sqlite", "mysql", "postgresql"]


# --- statements ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(("statement", "expected"), [
    ("ALTER TABLE posts DROP COLUMN legacy_flag", ["drops column posts.legacy_flag"]),
    ("DROP TABLE posts", ["drops table posts"]),
    ("DELETE FROM posts WHERE id > 3", ["deletes rows from posts"]),
    ("DELETE FROM posts", ["deletes all rows from posts"]),
    ("UPDATE posts SET status = 'draft'", []),
    ("CREATE TABLE t (id INTEGER)", []),
    ("INSERT INTO posts (id) VALUES (1)", []),
    ("DROP INDEX ix_posts_title", ["drops index ix_posts_title"]),
])
def test_destructive_sql(statement: str, expected: list[str], dialect: str) -> None:
    assert safety.destructive_sql(statement, dialect) == expected


@pytest.mark.parametrize(("statement", "dialect", "expected"), [
    ("TRUNCATE TABLE posts", "mysql", ["deletes all rows from posts"]),
    ("TRUNCATE posts, users", "postgresql", ["deletes all rows from posts", "deletes all rows from users"]),
    ("ALTER TABLE users DROP CONSTRAINT uq_users_email", "postgresql", ["drops constraint uq_users_email on users"]),
    ("ALTER TABLE posts DROP FOREIGN KEY fk_posts_user_id_users", "mysql",
     ["drops foreign key fk_posts_user_id_users on posts"]),
    ("DROP INDEX ix_posts_title ON posts", "mysql", ["drops index ix_posts_title on posts"]),
    ("ALTER TABLE users ALTER COLUMN name SET NOT NULL", "postgresql", ["makes users.name NOT NULL"]),
    ("DROP TYPE post_status", "postgresql", ["drops type post_status"]),
    ("this is not sql at all", "postgresql", []),
])
def test_destructive_sql_per_dialect(statement: str, dialect: str, expected: list[str]) -> None:
    assert safety.destructive_sql(statement, dialect) == expected


def test_sqlite_batch_rebuild_reports_only_the_columns_it_does_not_copy() -> None:
    script = [
        "CREATE TABLE posts (id INTEGER NOT NULL, title VARCHAR(200), legacy_flag BOOLEAN)",
        "CREATE TABLE _alembic_tmp_posts (id INTEGER NOT NULL, title VARCHAR(200))",
        "INSERT INTO _alembic_tmp_posts (id, title) SELECT posts.id, posts.title FROM posts",
        "DROP TABLE posts",
        "ALTER TABLE _alembic_tmp_posts RENAME TO posts",
    ]
    assert safety.destructive_script(script, "sqlite") == [[], [], [], ["drops column posts.legacy_flag"], []]
    # A rename inside the rebuild (body -> content) copies every column: no loss at all.
    renamed = ["CREATE TABLE _alembic_tmp_posts (id INTEGER, content TEXT)",
               "INSERT INTO _alembic_tmp_posts (id, content) SELECT posts.id, posts.body FROM posts",
               "DROP TABLE posts", "ALTER TABLE _alembic_tmp_posts RENAME TO posts"]
    assert safety.destructive_script(renamed, "sqlite", tables={"posts": ["id", "body"]}) == [[], [], [], []]
    # Prior columns unknown: said so rather than passed over.
    assert safety.destructive_script(renamed, "sqlite")[2] == [
        "rebuilds table posts (columns it does not copy are lost)"]


# --- revisions ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def history():
    script = migrator.script_directory()
    return {rev.revision: rev for rev in script.walk_revisions()}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_demo_history_is_classified_in_both_directions(history, dialect: str) -> None:
    classify = safety.classify_revision
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
    assert safety.classify_revision(history["0006"], False, "postgresql") == [
        "drops column posts.status", "drops type post_status"]


def test_summary_groups_drops() -> None:
    assert safety.summary(["drops table posts", "drops table users"]) == "drops tables posts, users"


@pytest.mark.parametrize(("old", "new", "narrows"), [
    (sa.String(200), sa.String(50), True),
    (sa.String(50), sa.String(200), False),
    (sa.Text(), sa.String(100), True),
    (sa.String(100), sa.Text(), False),
    (sa.BigInteger(), sa.Integer(), True),
    (sa.Integer(), sa.BigInteger(), False),
    (sa.Numeric(10, 2), sa.Numeric(8, 2), True),
    (sa.String(20), sa.Integer(), True),
    (None, sa.String(20), True),
])
def test_type_narrowing(old, new, narrows: bool) -> None:
    assert bool(safety.type_narrows(old, new)) is narrows


def test_ops_in_batch_blocks_raw_sql_and_constructs(tmp_path) -> None:
    copy = MigrationsCopy(tmp_path)
    copy.add("0009", "0008", upgrade="""
        op.execute("DELETE FROM posts WHERE status = 'draft'")
        op.execute(sa.text("TRUNCATE TABLE users"))
        op.execute(sa.table("posts", sa.column("id")).delete())
        op.execute(sa.table("posts", sa.column("id")).update().values(id=1))
        with op.batch_alter_table("users") as batch_op:
            batch_op.alter_column("name", existing_type=sa.String(200), nullable=False, existing_nullable=True)
            batch_op.alter_column("email", existing_type=sa.Text(), type_=sa.String(20))
            batch_op.drop_constraint("uq_users_email", type_="unique")
    """, downgrade="""
        rows = op.get_bind().execute(sa.text("SELECT id FROM posts")).fetchall()
    """)
    script = migrator.script_directory(migrator.alembic_config(_settings_for(copy)))
    rev = script.get_revision("0009")
    assert safety.classify_revision(rev, True, "postgresql") == [
        "deletes rows from posts",
        "deletes all rows from users",
        "deletes all rows from posts",
        "makes users.name NOT NULL",
        "narrows users.email from TEXT to VARCHAR(20)",
        "drops unique constraint uq_users_email on users",
    ]
    # A revision that reads data cannot be inspected offline: its own answer, not counted as destructive.
    assert safety.classify_revision(rev, False, "postgresql") == []
    verdict = safety.assess_revision(rev, False, "postgresql")
    assert verdict.uninspectable is not None and verdict.uninspectable.startswith(
        "its downgrade() cannot run without a database")
    assert not verdict.no_downgrade


def _settings_for(copy: MigrationsCopy):
    import importlib
    import sys

    sys.path.insert(0, copy.pythonpath)
    try:
        from project.core.conf import Settings

        return Settings(importlib.import_module(copy.module), copy.module)
    finally:
        sys.path.remove(copy.pythonpath)


# --- plans and CONFIRM_DESTRUCTIVE, on every engine -------------------------------------------------


def _version(db_url: str) -> tuple[str, ...]:
    from project.core.db import create_engine_for

    engine = create_engine_for(db_url)
    try:
        with engine.connect() as connection:
            return migrator.current_heads(connection)
    finally:
        engine.dispose()


def _tables(db_url: str) -> set[str]:
    from project.core.db import create_engine_for

    engine = create_engine_for(db_url)
    try:
        with engine.connect() as connection:
            return set(sa.inspect(connection).get_table_names())
    finally:
        engine.dispose()


def _output(name: str, *args: str, **options) -> str:
    """A command run in-process (call_command), its stdout."""
    from io import StringIO

    from project.core.management import call_command

    out = StringIO()
    call_command(name, *args, stdout=out, **options)
    return out.getvalue()


def test_plans_mark_destructive_steps(settings, db_url: str) -> None:
    lines = _output("migrate", plan=True).splitlines()
    index = lines.index("  Apply 0008 Drop posts.legacy_flag")
    assert lines[index + 1] == "  DESTRUCTIVE: drops column posts.legacy_flag"
    assert sum("DESTRUCTIVE" in line for line in lines) == 1

    assert "DESTRUCTIVE: drops column posts.legacy_flag" in _output("showmigrations", plan=True)

    _output("migrate", verbosity=0)
    back = _output("migrate", "zero", plan=True).splitlines()
    assert "  DESTRUCTIVE: drops tables posts, users" in back
    assert "  DESTRUCTIVE: narrows users.name from VARCHAR(200) to VARCHAR(50)" in back
    # Nothing pending: showmigrations marks only what is still to apply.
    assert "DESTRUCTIVE" not in _output("showmigrations", plan=True)


def test_confirm_destructive_refuses_before_touching_anything(manage, db_url: str) -> None:
    refused = manage("migrate", env={"CONFIRM_DESTRUCTIVE": "1"})
    line = one_clean_line(refused)
    assert "0008 drops column posts.legacy_flag" in line and "--allow-destructive" in line
    assert refused.returncode == 1
    assert _tables(db_url) == set()  # not even alembic_version

    # Up to the last harmless revision is fine; then the flag lets the drop through.
    assert manage("migrate", "0007", "-v0", env={"CONFIRM_DESTRUCTIVE": "1"}).returncode == 0
    ok = manage("migrate", "--allow-destructive", env={"CONFIRM_DESTRUCTIVE": "1"})
    assert ok.returncode == 0, ok.stderr
    assert _version(db_url) == ("0008",)

    # Downgrades count too: unapplying 0006 drops posts.status.
    down = manage("migrate", "0005", env={"CONFIRM_DESTRUCTIVE": "1"})
    line = one_clean_line(down)
    assert "unapply 0006 drops column posts.status" in line
    assert _version(db_url) == ("0008",)
    assert "status" in {c["name"] for c in _columns(db_url, "posts")}


def _columns(db_url: str, table: str) -> list[dict]:
    from project.core.db import create_engine_for

    engine = create_engine_for(db_url)
    try:
        with engine.connect() as connection:
            return sa.inspect(connection).get_columns(table)
    finally:
        engine.dispose()


def test_prod_settings_confirm_by_default(db_url: str) -> None:
    from conftest import run_manage

    result = run_manage("migrate", "--settings=prod", env={"PROD_DATABASE_URL": db_url})
    assert "Refusing to run destructive steps" in one_clean_line(result)
    assert _tables(db_url) == set()
