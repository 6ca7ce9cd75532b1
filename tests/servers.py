"""Real uvicorn processes for the application tests: start, wait until they answer, always stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
START_DEADLINE = 90.0  # seconds: only guards against a hang, never asserted on
sys.path.insert(0, str(ROOT / "scripts"))
from dbservers import find_free_port  # noqa: E402


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30)


def app_env(db_url: str, migrate_on_startup: bool, settings_module: str = "dev", **extra: str) -> dict[str, str]:
    """The environment of a served app: `settings_module` (the project's dev, or e.g. the fixture
    application's fixture_app.settings.dev, found on tests/) on db_url."""
    if settings_module != "dev":
        extra = {"PYTHONPATH": str(ROOT / "tests"), **extra}
    return {
        **os.environ,
        "SETTINGS_MODULE": settings_module,
        "DEV_DATABASE_URL": db_url,
        "MIGRATE_ON_STARTUP": "1" if migrate_on_startup else "0",
        "NO_COLOR": "1",
        **extra,
    }


@contextmanager
def serve(args: list[str], env: dict[str, str], log_path: Path, port: int) -> Iterator[Running]:
    """Run `args` (a server on `port`) with output to `log_path`; stop it, and its children, at exit."""
    with open(log_path, "wb") as out:
        # Its own session: the finally below can clean up every worker it spawned.
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        yield Running(process, f"http://127.0.0.1:{port}", log_path)
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # leftovers of the group we created
    except ProcessLookupError:
        pass
    process.wait()


@contextmanager
def uvicorn_app(db_url: str, tmp_path: Path, *, migrate_on_startup: bool, workers: int = 1,
                name: str = "uvicorn", settings_module: str = "dev") -> Iterator[Running]:
    """`python -m uvicorn project.app.asgi:app` on a free loopback port, with `settings_module` (default: the
    project's dev settings) on db_url."""
    port = find_free_port()
    args = [sys.executable, "-m", "uvicorn", "project.app.asgi:app", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers)]
    env = app_env(db_url, migrate_on_startup, settings_module)
    with serve(args, env, tmp_path / f"{name}.log", port) as running:
        yield running


def wait_until_up(running: Running, started_workers: int = 1) -> None:
    """Poll /health until it answers and `started_workers` workers have completed start-up."""
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            raise AssertionError(f"server exited with {running.process.returncode}:\n{running.log}")
        if running.log.count("Application startup complete.") >= started_workers:
            try:
                if httpx.get(running.base_url + "/health", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
        time.sleep(0.1)
    raise AssertionError(f"server did not come up within {START_DEADLINE:.0f}s:\n{running.log}")


def version_rows(db_url: str) -> list[str]:
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return list(connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())
    finally:
        engine.dispose()


def concurrent_migrates(env: dict[str, str], count: int) -> None:
    """`count` `manage.py migrate` processes started at once on an empty database with `env`: each exits 0 with
    nothing on stderr, exactly one applies 0001 and every other finds nothing left to do."""
    processes = [
        subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "migrate"], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    results = [(p, *p.communicate(timeout=180)) for p in processes]
    for process, stdout, stderr in results:
        assert process.returncode == 0, stdout + stderr
        assert stderr == ""
    outputs = [stdout for _, stdout, _ in results]
    assert sum("Applying 0001" in out for out in outputs) == 1
    assert sum("No migrations to apply." in out for out in outputs) == count - 1


def table_names(db_url: str) -> set[str]:
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
