"""Shared pytest fixtures.

Real-database fixtures come first: `pg_server` / `mysql_server` start
throwaway servers (lazily, once per session) and `db_url` hands each test a
fresh empty database on sqlite, MariaDB and PostgreSQL in turn.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import dbservers  # noqa: E402 - needs the sys.path entry above

# --- real database servers ---------------------------------------------------


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dbservers.Server]:
    # Raises if the server can't start: a missing database must fail, not skip.
    server = dbservers.start_postgres(tmp_path_factory.mktemp("postgres"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mysql_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dbservers.Server]:
    server = dbservers.start_mariadb(tmp_path_factory.mktemp("mariadb"))
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "mysql", "postgresql"], ids=["sqlite", "mysql", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, empty database for this test, once per engine."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    # getfixturevalue keeps server start-up lazy: only the engines in use start.
    fixture = "pg_server" if request.param == "postgresql" else "mysql_server"
    server: dbservers.Server = request.getfixturevalue(fixture)
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield server.create_database(name)
    try:
        # drop_database disconnects leftover sessions, so unclosed engines can't block it.
        server.drop_database(name)
    except Exception as error:  # cleanup must not mask the test result
        print(f"warning: could not drop test database {name}: {error}", file=sys.stderr)
