"""Masking touches only the password inside a URL (issue 10, item 5).

It used to replace the password everywhere in a message: with password `s`, "Cannot reach
po***tgre***ql ***erver". Here each password is a letter or a common word, the failures are real
(a real server refuses a real login, a real revision fails quoting the URL), and the line must keep
every word of the message while the URL's password is masked.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import run_manage
from migcopy import MigrationsCopy, one_clean_line

PASSWORDS = ["s", "x", "postgres", "server"]


@pytest.fixture(params=["postgresql", "mysql"])
def server(request):
    return request.getfixturevalue("pg_server" if request.param == "postgresql" else "mysql_server")


def _user_with_password(server, password: str) -> tuple[str, str]:
    """A new login `password` on the server, owning a new empty database: (user, database)."""
    tag = uuid.uuid4().hex[:8]
    user, database = f"u_{tag}", f"d_{tag}"
    admin = sa.create_engine(server.url("postgres" if server.kind == "postgresql" else "mysql"),
                             poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    literal = password.replace("'", "''")
    with admin.connect() as conn:
        if server.kind == "postgresql":
            conn.exec_driver_sql(f"CREATE ROLE {user} LOGIN PASSWORD '{literal}'")
            conn.exec_driver_sql(f"CREATE DATABASE {database} OWNER {user}")
        else:
            conn.exec_driver_sql(f"CREATE USER '{user}'@'%%' IDENTIFIED BY '{literal}'")
            conn.exec_driver_sql(f"CREATE DATABASE {database} CHARACTER SET utf8mb4")
            conn.exec_driver_sql(f"GRANT ALL PRIVILEGES ON {database}.* TO '{user}'@'%%'")
    admin.dispose()
    return user, database


def _url(server, user: str, password: str, database: str) -> sa.URL:
    driver = {"postgresql": "postgresql+psycopg2", "mysql": "mysql+pymysql"}[server.kind]
    return sa.URL.create(driver, username=user, password=password, host=server.host, port=server.port,
                         database=database)


def _no_password_in(output: str, url: sa.URL) -> None:
    assert f"{url.username}:{url.password}@" not in output, output


@pytest.mark.parametrize("password", PASSWORDS)
def test_login_failure_keeps_every_word(server, password: str) -> None:
    user, _ = _user_with_password(server, password)
    url = _url(server, user, password, "no_such_database")
    result = run_manage("migrate", env={"SETTINGS_MODULE": "dev",
                                        "DEV_DATABASE_URL": url.render_as_string(hide_password=False)}, in_process=True)
    line = one_clean_line(result)
    _no_password_in(result.stdout + result.stderr, url)
    # The whole sentence survives: the place, the server's own words, the advice.
    assert f"{server.kind} server {server.host}:{server.port}" in line
    assert "***" not in line, line
    if server.kind == "postgresql":
        # libpq has no SQLSTATE before login completes: the server's words say which of the two it was.
        assert 'database "no_such_database" does not exist' in line
        assert "wrong user or password, or the database does not exist" in line
    else:
        assert f"Access denied for user '{user}'@" in line and "wrong user or password" in line


@pytest.mark.parametrize("password", PASSWORDS)
def test_failure_quoting_the_url_masks_only_its_password(server, password: str, tmp_path: Path) -> None:
    user, database = _user_with_password(server, password)
    url = _url(server, user, password, database)
    copy = MigrationsCopy(tmp_path)
    for version in copy.versions.glob("*.py"):
        version.unlink()
    # A revision whose error message quotes the URL it runs on, password and all.
    copy.add("0001", None, message="quotes its url", upgrade="""
        url = op.get_bind().engine.url.render_as_string(hide_password=False)
        raise RuntimeError(f"cannot use {url} from this server")
    """)
    result = copy.manage("migrate", db_url=url.render_as_string(hide_password=False), in_process=True)
    line = one_clean_line(result)
    _no_password_in(result.stdout + result.stderr, url)
    masked = url.render_as_string(hide_password=True)
    assert f"Applying 0001 quotes its url failed: RuntimeError: cannot use {masked} from this server." in line
    assert "Nothing of it was kept and the database stays recorded at zero" in line


def test_a_multi_host_url_is_masked_as_written_and_its_servers_named(pg_server) -> None:
    """libpq's host list, as SQLAlchemy spells it (`?host=h1:p1&host=h2:p2`, for failover): the URL connects
    through the first host that answers, a failure names every host, and masking leaves the rest of the
    URL as written (SQLAlchemy's rendering would quote it: `host=127.0.0.1%3A5432`)."""
    import socket

    from project.core.errors import mask_secrets, mask_url

    user, database = _user_with_password(pg_server, "server")
    with socket.socket() as probe:  # a port nobody listens on: the first host fails, the second answers
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    hosts = f"host=127.0.0.1:{closed}&host={pg_server.host}:{pg_server.port}"
    written = f"postgresql+psycopg2://{user}:server@/{database}?{hosts}"
    masked = f"postgresql+psycopg2://{user}:***@/{database}?{hosts}"
    assert mask_url(written) == masked
    assert mask_secrets(f"on {written} now", {"DATABASE_URL": written}) == f"on {masked} now"

    reached = run_manage("migrate", "--plan", env={"DEV_DATABASE_URL": written}, in_process=True)
    assert reached.returncode == 0, reached.stderr

    wrong = written.replace(":server@", ":wrong@")
    refused = run_manage("migrate", env={"DEV_DATABASE_URL": wrong}, in_process=True)
    line = one_clean_line(refused)
    assert f"postgresql servers 127.0.0.1:{closed}, {pg_server.host}:{pg_server.port}" in line, line
    assert "localhost:5432" not in line and ":wrong@" not in refused.stdout + refused.stderr
