"""The real-database fixtures give each test a working, empty, password-protected database."""

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

TEXT = "héllo wörld ✓ 🐍"  # 4-byte UTF-8 catches a non-utf8mb4 MariaDB charset


def test_roundtrip_and_auth(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        assert inspect(engine).get_table_names() == []
        metadata = MetaData()
        items = Table(
            "items", metadata,
            Column("id", Integer, primary_key=True),
            Column("name", String(50), nullable=False),
        )  # fmt: skip
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(items.insert().values(name=TEXT))
        with engine.connect() as conn:
            assert conn.execute(select(items.c.id, items.c.name)).all() == [(1, TEXT)]
    finally:
        engine.dispose()

    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        return  # sqlite has no authentication
    bad = create_engine(url.set(password=url.password + "wrong"), poolclass=NullPool)
    with pytest.raises(OperationalError):
        bad.connect()
