#!/usr/bin/env python
"""Kill -> /health/ready 200: how soon the app serves again after its PostgreSQL crashes and restarts.

    .venv/bin/python bench/outage_ready.py [--runs 5] [--down 3]

A throwaway PostgreSQL (scripts/dbservers.py) is SIGKILLed (postmaster and backends), left down `--down` seconds,
then started again on its data directory and port. Two cases, uvicorn on the project's app (dev settings):
- running: one worker serving, the database dies under it (readiness 503, then 200 with no restart);
- start-up: three workers with start-up migrations of the project's history plus a revision that sleeps; the kill
  lands inside it, the workers wait (MIGRATE_ON_STARTUP_WAIT), and 200 means every worker has started.
Prints, per case, the median (min-max) seconds from the kill and from "the server takes logins again" (back) to the
first 200 (polled every 50 ms), and from back to every worker serving. The machine is shared: the back columns are
what the tool adds (the down time is the test's choice).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT)]

import dbservers  # noqa: E402

SLEEPER = '''"""sleeps (bench/outage_ready.py)"""
import pathlib
from alembic import op

revision = "outage_sleeper"
down_revision = {head!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
    marker = pathlib.Path({marker!r})
    if not marker.exists() and not op.get_context().as_sql:
        marker.touch()
        op.execute("SELECT pg_sleep(60)")  # killed here


def downgrade() -> None:
    pass
'''


def history_with_sleeper(work: Path, marker: Path) -> str:
    """A settings module (in `work`) whose MIGRATIONS_DIR is a copy of the project's history plus a sleeping head."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    migrations = work / "migrations"
    shutil.copytree(ROOT / "migrations", migrations, ignore=shutil.ignore_patterns("__pycache__"))
    config = Config()
    config.set_main_option("script_location", str(migrations))
    head = ScriptDirectory.from_config(config).get_current_head()
    (migrations / "versions" / "outage_sleeper.py").write_text(SLEEPER.format(head=head, marker=str(marker)))
    settings = f"from settings.dev import *  # noqa\nMIGRATIONS_DIR = {str(migrations)!r}\n"
    (work / "outage_settings.py").write_text(settings)
    return "outage_settings"


def serve(url: str, workers: int, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = dbservers.find_free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "project.app.asgi:app", "--host", "127.0.0.1", "--port", str(port),
             "--workers", str(workers)], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "DEV_DATABASE_URL": url, "MIGRATE_ON_STARTUP": "1", "NO_COLOR": "1", **env})
    return process, f"http://127.0.0.1:{port}/health/ready"


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait()


def until(predicate: Callable[[], bool], what: str, limit: float = 120.0) -> float:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return time.monotonic()


def status(ready_url: str) -> int | None:
    try:
        return httpx.get(ready_url, timeout=1).status_code
    except httpx.TransportError:
        return None


def one_run(base: Path, case: str, down: float) -> tuple[float, float, float]:
    server = dbservers.start_postgres(base / "pg")
    try:
        url = server.create_database("outage")
        # The throwaway server commits asynchronously: a crash would lose the last commits (and readiness would
        # then say "migrations pending"). A real primary does not.
        server._admin_execute(['ALTER DATABASE "outage" SET synchronous_commit = on'])
        work = Path(tempfile.mkdtemp(dir=base))
        marker = work / "sleeping"
        env: dict[str, str] = {}
        if case == "start-up":
            env = {"SETTINGS_MODULE": history_with_sleeper(work, marker), "PYTHONPATH": str(work)}
        process, ready_url = serve(url, 3 if case == "start-up" else 1, env, work / "uvicorn.log")
        try:
            if case == "start-up":
                until(marker.exists, "the sleeping revision")
            else:
                until(lambda: status(ready_url) == 200, "readiness")
            killed = time.monotonic()
            dbservers.kill_server(server)
            time.sleep(down)
            dbservers.restart_server(server)
            back = time.monotonic()
            ready = until(lambda: status(ready_url) == 200, "readiness after the restart")
            started = ready  # the running case: its one worker never stopped
            if case == "start-up":
                log = work / "uvicorn.log"
                started = until(lambda: log.read_text().count("Application startup complete.") == 3, "every worker")
            return ready - killed, ready - back, max(started, ready) - back
        finally:
            stop(process)
    finally:
        server.stop()


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--down", type=float, default=3.0, help="seconds the server stays down")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="outage-"))
    base.chmod(0o711)  # the postgres OS user reaches its directory inside
    try:
        print("| case | runs | down | kill -> first 200 | back -> first 200 | back -> every worker serving |")
        print("|---|---|---|---|---|---|")
        for case in ("running", "start-up"):
            results = [one_run(base, case, args.down) for _ in range(args.runs)]
            cells = [summary([result[i] for result in results]) for i in range(3)]
            print(f"| {case} | {args.runs} | {args.down:g} s | {' | '.join(cells)} |", flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
