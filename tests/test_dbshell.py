"""`manage.py dbshell`: the engine's own client on the selected database, password never in argv."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import ROOT, run_manage
from sqlalchemy.engine import make_url

from project.core.management.commands.dbshell import client_command

CLIENT_NAMES = {"sqlite3", "mariadb", "mysql", "psql"}


def _children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                # "pid (comm) state ppid ...": comm may hold spaces, so split after its ')'.
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == parent:
                found.append(int(entry.name))
    return found


def _client_argv(parent: int) -> list[str]:
    """The argv of `parent`'s client process once it has exec'd (before that the child is still Python)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for pid in _children(parent):
            try:
                argv = (Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").decode().split("\0"))
            except OSError:
                continue
            if os.path.basename(argv[0]) in CLIENT_NAMES:
                return argv
        time.sleep(0.05)
    raise AssertionError("dbshell did not start a client")


def test_dbshell_runs_a_query_without_the_password_in_argv(db_url: str) -> None:
    env = {**os.environ, "DEV_DATABASE_URL": db_url, "SETTINGS_MODULE": "dev", "NO_COLOR": "1"}
    process = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "dbshell"], cwd=ROOT, env=env,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # The client waits for its input, so it is there to inspect, as `ps` would.
        argv = _client_argv(process.pid)
        option_files = [a.split("=", 1)[1] for a in argv if a.startswith("--defaults-extra-file=")]
        for path in option_files:
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        stdout, stderr = process.communicate("SELECT 42;\n", timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert "42" in stdout
    password = make_url(db_url).password
    if password:
        assert not any(password in arg for arg in argv), argv
    url = make_url(db_url)
    assert url.database in argv
    # The temporary option file (MySQL/MariaDB) is gone once the client has exited.
    assert not any(os.path.exists(path) for path in option_files)


def test_client_command_passes_the_password_out_of_band(db_url: str) -> None:
    url = make_url(db_url)
    with client_command(url, ["-e"] if url.get_backend_name() == "mysql" else []) as client:
        assert not any(url.password and url.password in arg for arg in client.args)
        backend = url.get_backend_name()
        if backend == "postgresql":
            assert client.env["PGPASSWORD"] == url.password
            assert client.args[-1] == url.database and ["-h", "127.0.0.1"] == client.args[3:5]
        elif backend == "mysql":
            assert client.args[1].startswith("--defaults-extra-file=")  # the client insists on first place
            option_file = Path(client.args[1].split("=", 1)[1])
            assert option_file.read_text() == f'[client]\npassword="{url.password}"\n'
            assert "-e" in client.args and client.args[-1] == url.database
        else:
            assert client.args[1:] == [url.database] and client.env == {}
    if backend == "mysql":
        assert not option_file.exists()


@pytest.mark.parametrize(
    "password",
    ['we"ird#pa ss\\w:rd@/', "it's a#p\\ss;w@rd", "bo\"th'#kinds"],
    ids=["double-quote", "single-quote", "both-quotes"],
)
@pytest.mark.parametrize("kind", ["mysql", "postgresql"])
def test_dbshell_logs_in_with_awkward_passwords(kind: str, password: str, request: pytest.FixtureRequest) -> None:
    server = request.getfixturevalue("mysql_server" if kind == "mysql" else "pg_server")
    user = f"u_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server.url("mysql" if kind == "mysql" else "postgres"),
                             poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        if kind == "mysql":
            connection.execute(sa.text(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY :pw"), {"pw": password})
        else:
            # psycopg2 binds client-side, so a parameter works in DDL too.
            connection.execute(sa.text(f"CREATE ROLE {user} LOGIN PASSWORD :pw"), {"pw": password})
    admin.dispose()
    # No database on MariaDB (the new user may open none); PostgreSQL lets everyone connect to `postgres`.
    url = sa.URL.create(make_url(server.url("postgres")).drivername, username=user, password=password,
                        host=server.host, port=server.port, database=None if kind == "mysql" else "postgres")
    result = run_manage("dbshell", input="SELECT CURRENT_USER;\n", env={
        "DEV_DATABASE_URL": url.render_as_string(hide_password=False), "SETTINGS_MODULE": "dev"})
    assert result.returncode == 0, result.stderr
    assert user in result.stdout


def test_dbshell_returns_the_client_exit_status(tmp_path: Path) -> None:
    result = run_manage("dbshell", input="SELECT * FROM no_such_table;\n",
                        env={"DEV_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "SETTINGS_MODULE": "dev"})
    assert result.returncode == 1
    assert "no such table" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "CommandError: sqlite3 exited with status 1."


@pytest.mark.parametrize(
    "url, package",
    [
        ("sqlite:///{tmp}/x.db", "sqlite3"),
        ("mysql+pymysql://app:s3cret@127.0.0.1:1/app", "mariadb-client"),
        ("postgresql+psycopg2://app:s3cret@127.0.0.1:1/app", "postgresql-client"),
    ],
    ids=["sqlite", "mysql", "postgresql"],
)
def test_missing_client_names_the_debian_package(url: str, package: str, tmp_path: Path) -> None:
    empty_path = tmp_path / "bin"
    empty_path.mkdir()
    result = run_manage("dbshell", env={"DEV_DATABASE_URL": url.format(tmp=tmp_path), "SETTINGS_MODULE": "dev",
                                        "PATH": str(empty_path)})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"apt install {package}" in lines[0], result.stderr
    assert "s3cret" not in result.stderr
