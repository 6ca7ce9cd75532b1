"""pgpool-II failing over by itself (issue 22): in front of a primary and its streaming standby, with health
checks and a failover_command that promotes the standby. The primary is SIGKILLed in the middle of a `migrate`
through pgpool (inside a revision that waits in Python between two statements, or inside a pg_sleep statement):
the killed run says in one line that the server went away, not the revision; once pgpool has failed over, the
next migrate through the same address applies the rest exactly once, and the database (schema, alembic_version,
applied log) equals a fault-free run's. Servers of the test's own: the session's shared ones are never killed."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import dbservers
import pytest
import sqlalchemy as sa
from migcopy import one_clean_line
from test_topology_patroni import _history, _migrate, _start_migrate, _state, _wait_for_file

from project.core.errors import mask_url

pytestmark = pytest.mark.failover  # make test-failover
NAME = "failover"


def _scalar(url: str, statement: str) -> object:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            return connection.scalar(sa.text(statement))
    finally:
        engine.dispose()


def _until(check, what: str) -> None:
    deadline = time.monotonic() + 90  # guards against a hang only
    while True:
        try:
            if check():
                return
        except sa.exc.DBAPIError:
            pass
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.1)


@pytest.mark.parametrize("rev", ["0010", "0011"])
def test_pgpool_fails_over_mid_revision_and_migrate_finishes_exactly_once(tmp_path: Path, rev: str) -> None:
    """The primary killed while a migrate through pgpool is inside `rev` (0010: between two statements, 0011: in
    one): one clean line blaming the server; pgpool promotes the standby; migrate through pgpool finishes, once."""
    primary = dbservers.start_postgres(tmp_path / "primary")
    standby: dbservers.Server | None = None
    pool: dbservers.Pgpool | None = None
    try:
        primary.create_database(NAME)
        # The throwaway servers commit asynchronously: every commit of the migrate must reach the standby here.
        primary._admin_execute([f'ALTER DATABASE "{NAME}" SET synchronous_commit = on'])
        standby = dbservers.start_postgres_standby(primary, tmp_path / "standby")
        pool = dbservers.start_pgpool_failing_over(primary, standby, tmp_path / "pgpool")
        copy, markers = _history(tmp_path / "history")
        for other in {"0010", "0011"} - {rev}:
            (markers / f"{NAME}-{other}").touch()  # only the revision chosen waits
        url = pool.url(NAME)
        first = _start_migrate(copy, url)
        _wait_for_file(markers / f"{NAME}-{rev}", first, f"{rev}'s wait")
        written = _scalar(primary.url("postgres"), "SELECT pg_current_wal_lsn()")
        _until(lambda: _scalar(standby.url("postgres"), f"SELECT pg_last_wal_replay_lsn() >= '{written}'::pg_lsn"),
               "the standby replaying what the primary wrote")
        dbservers.kill_server(primary)
        (markers / f"{NAME}-{rev}.go").touch()  # 0010 goes on to its next statement
        stdout, stderr = first.communicate(timeout=120)
        line = one_clean_line(subprocess.CompletedProcess([], first.returncode, stdout, stderr), primary.password)
        step = {"0010": "0010 python wait", "0011": "0011 sql wait"}[rev]
        assert line.startswith(f"CommandError: Lost the connection to the database server while applying {step} "
                               f"({mask_url(url)})"), line
        assert f"nothing of {rev} was kept" in line and f"recorded at {int(rev) - 1:04d}" in line, line
        assert "re-run migrate" in line and "fix the revision" not in line, line

        _until(lambda: _scalar(url, "SELECT NOT pg_is_in_recovery()") is True, "pgpool reaching a promoted primary")
        done = _migrate(copy, url)
        assert done.returncode == 0, done.stderr
        expected = standby.create_database("expected")
        for waiting in ("0010", "0011"):
            (markers / f"expected-{waiting}").touch()
        assert _migrate(copy, expected).returncode == 0
        assert _state(url) == _state(expected)  # each revision applied and logged once, as without the fault
    finally:
        for server in (pool, standby, primary):  # pgpool first, the killed primary too (its data directory)
            if server is not None:
                server.stop()
