"""Dev behaves like prod: what SQLite would let through (or answer differently) is refused or answered
the same way on every engine, and on the async drivers too.

The tool on the fixture application (tests/fixture_app: projects and their tasks); what the demo
application's API validates is tests/demo/test_demo_drivers.py."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from migcopy import fixture_copy, one_clean_line
from servers import version_rows
from sqlalchemy.engine import make_url

from project.core import db
from project.core.management import call_command

ASYNC_DRIVER = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg", "mysql": "mysql+asyncmy"}


def async_url(db_url: str) -> str:
    url = make_url(db_url)
    return url.set(drivername=ASYNC_DRIVER[url.get_backend_name()]).render_as_string(hide_password=False)


@pytest.fixture
def migrated(fixture_settings, db_url: str) -> str:
    call_command("migrate", verbosity=0)
    return db_url


def _orphans_refused(connection: sa.Connection) -> list[str]:
    """Each statement that breaks a foreign key, as the database answers it: 'refused' or 'accepted'."""
    connection.execute(sa.text("INSERT INTO projects (id, slug) VALUES (1, 'apollo')"))
    connection.execute(sa.text("INSERT INTO tasks (id, project_id, title) VALUES (1, 1, 'Hello')"))
    connection.commit()
    answers = []
    for statement in ("INSERT INTO tasks (id, project_id, title) VALUES (2, 999, 'orphan')",
                      "DELETE FROM projects WHERE id = 1",
                      "UPDATE tasks SET project_id = 999 WHERE id = 1"):
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
            assert connection.execute(sa.text("SELECT count(*) FROM tasks")).scalar() == 1
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


def test_migrations_keep_working_with_foreign_keys_on(fixture_settings, db_url: str) -> None:
    """Batch rebuilds of a referenced table, with rows, both ways; the app's connections enforce afterwards."""
    engine = db.create_engine_for(db_url)
    try:
        call_command("migrate", "0001", verbosity=0)
        with engine.begin() as connection:
            connection.execute(sa.text("INSERT INTO projects (id, slug, name) VALUES (1, 'apollo', 'Apollo')"))
            connection.execute(sa.text("INSERT INTO tasks (id, project_id, title) VALUES (1, 1, 'Hello')"))
        # 0002-0005 rebuild projects (referenced by tasks) and tasks on SQLite: with enforcement on during
        # the copy, dropping the old projects table would fail or take the tasks with it.
        call_command("migrate", verbosity=0)
        call_command("migrate", "0002", verbosity=0)
        call_command("migrate", verbosity=0)
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT id, project_id, title FROM tasks")).all() == [(1, 1, "Hello")]
            if connection.dialect.name == "sqlite":
                assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_a_revision_that_breaks_a_foreign_key_fails_and_is_rolled_back(tmp_path: Path, db_url: str) -> None:
    copy = fixture_copy(tmp_path)
    assert copy.manage("migrate", db_url=db_url, in_process=True).returncode == 0
    # SQLite runs revisions with enforcement off (batch rebuilds need it), so this INSERT goes through
    # there; PRAGMA foreign_key_check before the commit catches it. The servers refuse the INSERT itself.
    copy.add("0009", "0008", upgrade="op.execute(\"INSERT INTO tasks (project_id, title) VALUES (999, 'orphan')\")",
             message="Insert an orphan")
    result = copy.manage("migrate", db_url=db_url, in_process=True)
    line = one_clean_line(result, make_url(db_url).password or "")
    assert line.startswith("CommandError: Applying 0009 Insert an orphan failed: "), line
    assert "stays recorded at 0008" in line
    if make_url(db_url).get_backend_name() == "sqlite":
        assert "FOREIGN KEY constraint failed (PRAGMA foreign_key_check): 1 row of tasks refers to projects rows " \
               "that do not exist" in line, line
    assert version_rows(db_url) == ["0008"]
    engine = db.create_engine_for(db_url)
    try:
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM tasks")).scalar() == 0
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
