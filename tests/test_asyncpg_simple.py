"""project.core.asyncpg_simple on a real PostgreSQL through asyncpg: parameterless DDL and DML go out as simple
queries (nothing prepared), with the rowcount Alembic checks, inside the connection's transaction (rolled back
with it), errors translated as SQLAlchemy's own path translates them; statements with parameters or rows keep
the prepared path. It also pins the adapter's private parts the module relies on."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from project.core import asyncpg_simple, db


@pytest.fixture
def asyncpg_url(db_url: str) -> str:
    return make_url(db_url).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def _prepared(connection: sa.Connection) -> set[str]:
    cache = connection.connection.dbapi_connection._prepared_statement_cache  # type: ignore[union-attr]
    return set(cache.keys())


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_simple_queries_on_asyncpg(asyncpg_url: str) -> None:
    @db.sync_entry
    def run() -> None:
        with db.connect(asyncpg_url) as connection:
            cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            assert asyncpg_simple.enabled(cursor), "SQLAlchemy's asyncpg adapter changed: see asyncpg_simple"
            table = sa.Table("simple_t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                             sa.Column("name", sa.String(20)), implicit_returning=False)
            with connection.begin():
                table.create(connection)
                connection.execute(sa.insert(table).values(id=sa.literal_column("1"), name=sa.literal_column("'a'")))
                connection.execute(sa.insert(table).values(id=sa.literal_column("2"), name=sa.literal_column("'b'")))
                updated = connection.execute(sa.update(table).values(name=sa.literal_column("'c'")))
                assert updated.rowcount == 2  # Alembic raises unless its version UPDATE reports 1
                # Parameters or rows: SQLAlchemy's prepared path, as before.
                names = connection.execute(sa.select(table.c.name).where(table.c.id == 1)).scalars().all()
                assert names == ["c"]
            prepared = _prepared(connection)
            assert not any("CREATE TABLE" in s or "UPDATE" in s or "INSERT" in s for s in prepared), prepared
            assert any(s.startswith("SELECT") for s in prepared), prepared

            with pytest.raises(sa.exc.ProgrammingError, match="already exists"):
                with connection.begin():
                    connection.execute(sa.schema.CreateTable(sa.Table("simple_u", sa.MetaData(),
                                                                      sa.Column("id", sa.Integer))))
                    table.create(connection)  # fails: rolls simple_u back with it
            assert sa.inspect(connection).has_table("simple_t")
            assert not sa.inspect(connection).has_table("simple_u")
            connection.rollback()  # the inspector's reads began one
            with connection.begin():
                table.drop(connection)

    run()
