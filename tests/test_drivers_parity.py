"""Dev behaves like prod: what SQLite would let through (or answer differently) is refused or answered
the same way on every engine, and on the async drivers too."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from migcopy import MigrationsCopy, one_clean_line
from servers import uvicorn_app, version_rows, wait_until_up
from sqlalchemy.engine import make_url

from project.core import db
from project.core.management import call_command

ASYNC_DRIVER = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg", "mysql": "mysql+asyncmy"}


def async_url(db_url: str) -> str:
    url = make_url(db_url)
    return url.set(drivername=ASYNC_DRIVER[url.get_backend_name()]).render_as_string(hide_password=False)


@pytest.fixture
def migrated(settings, db_url: str) -> str:
    call_command("migrate", verbosity=0)
    return db_url


def _orphans_refused(connection: sa.Connection) -> list[str]:
    """Each statement that breaks a foreign key, as the database answers it: 'refused' or 'accepted'."""
    connection.execute(sa.text("INSERT INTO users (id, email) VALUES (1, 'ann@example.com')"))
    connection.execute(sa.text("INSERT INTO posts (id, user_id, title) VALUES (1, 1, 'Hello')"))
    connection.commit()
    answers = []
    for statement in ("INSERT INTO posts (id, user_id, title) VALUES (2, 999, 'orphan')",
                      "DELETE FROM users WHERE id = 1",
                      "UPDATE posts SET user_id = 999 WHERE id = 1"):
        try:
            connection.execute(sa.text(statement))
            connection.commit()
            answers.append("accepted")
        except sa.exc.IntegrityError:
            connection.rollback()
            answers.append("refused")
    return answers


def test_foreign_keys_are_enforced_on_every_engine(migrated: str) -> None:
    engine = db.create_engine_for(migrated)
    try:
        with engine.connect() as connection:
            assert _orphans_refused(connection) == ["refused", "refused", "refused"]
            assert connection.execute(sa.text("SELECT count(*) FROM posts")).scalar() == 1
    finally:
        engine.dispose()


def test_foreign_keys_are_enforced_on_the_async_drivers(migrated: str) -> None:
    async def main() -> list[str]:
        engine = db.create_async_engine_for(async_url(migrated))
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(_orphans_refused)
        finally:
            await engine.dispose()

    assert asyncio.run(main()) == ["refused", "refused", "refused"]


def test_migrations_keep_working_with_foreign_keys_on(settings, db_url: str) -> None:
    """Batch rebuilds of a referenced table, with rows, both ways; the app's connections enforce afterwards."""
    engine = db.create_engine_for(db_url)
    try:
        call_command("migrate", "0001", verbosity=0)
        with engine.begin() as connection:
            connection.execute(sa.text("INSERT INTO users (id, email, name) VALUES (1, 'ann@example.com', 'Ann')"))
            connection.execute(sa.text("INSERT INTO posts (id, user_id, title) VALUES (1, 1, 'Hello')"))
        # 0002-0005 rebuild users (referenced by posts) and posts on SQLite: with enforcement on during
        # the copy, dropping the old users table would fail or take the posts with it.
        call_command("migrate", verbosity=0)
        call_command("migrate", "0002", verbosity=0)
        call_command("migrate", verbosity=0)
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT id, user_id, title FROM posts")).all() == [(1, 1, "Hello")]
            if connection.dialect.name == "sqlite":
                assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_a_revision_that_breaks_a_foreign_key_fails_and_is_rolled_back(tmp_path: Path, db_url: str) -> None:
    copy = MigrationsCopy(tmp_path)
    assert copy.manage("migrate", db_url=db_url).returncode == 0
    # SQLite runs revisions with enforcement off (batch rebuilds need it), so this INSERT goes through
    # there; PRAGMA foreign_key_check before the commit catches it. The servers refuse the INSERT itself.
    copy.add("0009", "0008", upgrade="op.execute(\"INSERT INTO posts (user_id, title) VALUES (999, 'orphan')\")",
             message="Insert an orphan")
    result = copy.manage("migrate", db_url=db_url)
    line = one_clean_line(result, make_url(db_url).password or "")
    assert line.startswith("CommandError: Applying 0009 Insert an orphan failed: "), line
    assert "stays recorded at 0008" in line
    if make_url(db_url).get_backend_name() == "sqlite":
        assert "FOREIGN KEY constraint failed (PRAGMA foreign_key_check): 1 row of posts refers to users rows " \
               "that do not exist" in line, line
    assert version_rows(db_url) == ["0008"]
    engine = db.create_engine_for(db_url)
    try:
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM posts")).scalar() == 0
    finally:
        engine.dispose()


def _timestamps(connection: sa.Connection) -> list[dt.datetime]:
    table = sa.Table("stamps", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("at", db.UTCDateTime()))
    table.create(connection)
    paris = dt.timezone(dt.timedelta(hours=2))
    connection.execute(table.insert(), [{"id": 1, "at": dt.datetime(2026, 6, 1, 14, 30, tzinfo=paris)},
                                        {"id": 2, "at": dt.datetime(2026, 1, 1, 0, 0, 5, tzinfo=dt.UTC)}])
    values = list(connection.execute(sa.select(table.c.at).order_by(table.c.id)).scalars())
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        connection.execute(table.insert(), {"id": 3, "at": dt.datetime(2026, 1, 1)})
    connection.rollback()
    return values


EXPECTED = [dt.datetime(2026, 6, 1, 12, 30, tzinfo=dt.UTC), dt.datetime(2026, 1, 1, 0, 0, 5, tzinfo=dt.UTC)]


def test_datetimes_come_back_aware_in_utc_on_every_engine(db_url: str) -> None:
    engine = db.create_engine_for(db_url)
    try:
        with engine.connect() as connection:
            values = _timestamps(connection)
    finally:
        engine.dispose()
    assert values == EXPECTED
    assert all(v.tzinfo is dt.UTC for v in values)


def test_datetimes_come_back_aware_in_utc_on_the_async_drivers(db_url: str) -> None:
    async def main() -> list[dt.datetime]:
        engine = db.create_async_engine_for(async_url(db_url))
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(_timestamps)
        finally:
            await engine.dispose()

    values = asyncio.run(main())
    assert values == EXPECTED and all(v.tzinfo is dt.UTC for v in values)


def test_the_api_refuses_what_one_engine_would_store_silently(db_url: str, tmp_path: Path) -> None:
    """Too long for its column (SQLite stores it), an id beyond 32 bits (PostgreSQL errors, the others
    find nothing): a 422 from validation on every engine, and nothing reaches the database."""
    with uvicorn_app(db_url, tmp_path, migrate_on_startup=True) as server:
        wait_until_up(server)
        with server.client() as http:
            ada = http.post("/users", json={"email": "ada@example.com"}).json()
            too_long = [
                ("POST", "/users", {"email": "a" * 250 + "@example.com"}),
                ("POST", "/users", {"email": "bo@example.com", "name": "n" * 201}),
                ("PATCH", f"/users/{ada['id']}", {"name": "n" * 201}),
                ("POST", "/posts", {"user_id": ada["id"], "title": "t" * 201}),
                ("POST", "/posts", {"user_id": ada["id"], "title": "t", "content": "c" * 16_384}),
                ("POST", "/posts", {"user_id": 2**31, "title": "t"}),
            ]
            for method, path, body in too_long:
                response = http.request(method, path, json=body)
                assert response.status_code == 422, (method, path, response.text)
            for path in (f"/users/{2**40}", f"/posts/{2**31}", f"/posts?user_id={2**33}", f"/users?offset={2**40}"):
                assert http.get(path).status_code == 422, path
            # At the limits, accepted everywhere (MySQL's TEXT holds 16,383 four-byte characters).
            widest = "\U0001F600" * 16_383
            fits = http.post("/posts", json={"user_id": ada["id"], "title": "t" * 200, "content": widest})
            assert fits.status_code == 201, fits.text
            assert http.get("/users").json()["total"] == 1
            assert http.get("/posts").json()["total"] == 1
    assert "Traceback" not in server.log


def test_schema_lengths_are_the_columns_lengths() -> None:
    """The API's limits and the columns' lengths cannot drift apart unnoticed."""
    from project.app import models, schemas

    for schema, model in [(schemas.UserCreate, models.User), (schemas.PostCreate, models.Post)]:
        for name, field in schema.model_fields.items():
            column = model.__table__.columns.get(name)
            if column is None or not isinstance(column.type, sa.String) or isinstance(column.type, sa.Enum):
                continue  # an Enum is a String with a length, but its values are validated instead
            length = column.type.length
            if length is None:
                continue
            limits = [m.max_length for m in field.metadata if getattr(m, "max_length", None)]
            if not limits:  # Optional[Annotated[...]]: the constraint sits on the inner type
                from typing import get_args

                limits = [m.max_length for arg in get_args(field.annotation)
                          for m in getattr(arg, "__metadata__", ()) if getattr(m, "max_length", None)]
            assert limits == [length], (schema.__name__, name, limits, length)


def test_data_migration_types_the_enum_column_as_the_schema_does() -> None:
    """0007's lightweight table must bind post_status, not VARCHAR: psycopg 3 and asyncpg send typed
    parameters, and PostgreSQL refuses a character varying for an enum column."""
    import importlib.util

    from conftest import ROOT

    path = ROOT / "migrations" / "versions" / "0007_publish_posts_with_content.py"
    spec = importlib.util.spec_from_file_location("rev0007", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    status = module.posts.c.status.type
    assert isinstance(status, sa.Enum) and status.name == "post_status"
    assert set(status.enums) == {"draft", "published"}
