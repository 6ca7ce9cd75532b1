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


def test_help_starts_nothing() -> None:
    import subprocess
    import sys
    import time
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "scripts" / "dbservers.py"
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: dbservers.py") and "POSTGRES_URL" in result.stdout
    assert "URL=" not in result.stdout.replace("POSTGRES_URL=...", "").replace("MYSQL_URL=...", "")
    assert time.monotonic() - started < 15  # a server start takes longer than that
    assert result.stderr == ""


def test_piped_url_lines_arrive_while_the_servers_run(tmp_path) -> None:
    """A reader of the pipe gets each URL as soon as its server is up, not at exit; SIGTERM stops both."""
    import os
    import select
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "scripts" / "dbservers.py"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    # Unbuffered on this side: select() then sees every byte the script has written.
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               env=env, cwd=tmp_path, bufsize=0)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while len(lines) < 2 and time.monotonic() < deadline:
            ready, _, _ = select.select([process.stdout], [], [], 1.0)
            if ready:
                lines.append(process.stdout.readline().decode())  # type: ignore[union-attr]
            assert process.poll() is None, "exited before printing both URLs"
        assert [line.split("=", 1)[0] for line in lines] == ["POSTGRES_URL", "MYSQL_URL"], lines
        urls = [make_url(line.strip().split("=", 1)[1]) for line in lines]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=90) == 0
    for url in urls:  # stopped: nothing listens on their ports any more
        engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 3})
        with pytest.raises(OperationalError):
            engine.connect()
        engine.dispose()
