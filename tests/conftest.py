"""Shared pytest fixtures.

Real-database fixtures come first: `pg_server` / `mysql_server` start
throwaway servers (lazily, once per session) and `db_url` hands each test a
fresh empty database on sqlite, MariaDB and PostgreSQL in turn.

Then two kinds of settings:
- the project's own (`settings`, `manage`, `run_manage`, and `migrated_settings` / `migrated_db_url`: a fresh
  database already at head, for application tests): whatever application and history the project has;
- the tool's fixture application (`fixture_settings`, `fixture_manage`, `run_fixture_manage`):
  tests/fixture_app's projects/tasks models and history, on which the tool's own tests run, so that
  they pass with the demo application removed.
"""

from __future__ import annotations

import contextlib
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import dbservers  # noqa: E402 - needs the sys.path entry above
from topology_fixtures import galera_cluster, pg_database, pg_standby, pgbouncer, pgpool  # noqa: E402, F401

# --- parallel runs (pytest-xdist) ----------------------------------------------

# Session fixtures that start something costly (a standby, a pooler, a 3-node cluster) for a few tests: under
# pytest-xdist each worker would start its own copy, so the tests that use one run on a single worker
# (`--dist loadgroup`, as `make test` runs the suite). pg_server and mysql_server are used everywhere: each
# worker starts its own.
SHARED_SESSION_FIXTURES = ("galera_cluster", "pg_standby", "pgbouncer", "pgpool")  # pgpool: pg_standby's group


def xdist_group_of(item: pytest.Item) -> str | None:
    """The group that keeps `item` on one worker with the tests sharing its costly fixture, or None."""
    for name in SHARED_SESSION_FIXTURES:
        if name in item.fixturenames:  # the fixture closure: indirect use counts too
            return name
    # A module-scoped fixture (e.g. test_bugs_install's venv of tools) is set up once per module per worker.
    fixture_info = getattr(item, "_fixtureinfo", None)
    for definitions in getattr(fixture_info, "name2fixturedefs", {}).values():
        if definitions and definitions[-1].scope == "module":
            return item.nodeid.split("::")[0]
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        group = xdist_group_of(item)
        if group is not None and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(group))


class WorkerTimeline:
    """At the end of a pytest-xdist run, each worker's tests, busy time and when it ran out of work: a worker
    idle long before the other means a long group or test was scheduled last (order the collection so it
    starts early). Only the controller sees reports from workers (they carry `node`)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.workers: dict[str, dict[str, float]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        node = getattr(report, "node", None)
        if node is None:
            return
        worker = self.workers.setdefault(node.gateway.id, {"tests": 0, "busy": 0.0, "done": 0.0})
        worker["busy"] += report.duration
        worker["tests"] += report.when == "teardown"
        worker["done"] = time.monotonic() - self.started

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.workers:
            return
        wall = time.monotonic() - self.started
        terminalreporter.write_sep("=", "per-worker timeline")
        for name, worker in sorted(self.workers.items()):
            terminalreporter.write_line(
                f"{name}: {worker['tests']:.0f} tests, busy {worker['busy']:.0f} s, out of work at "
                f"{worker['done']:.0f} s of {wall:.0f} s")


def pytest_configure(config: pytest.Config) -> None:
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        config.pluginmanager.register(WorkerTimeline(), "worker-timeline")


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


# --- project settings and the manage.py CLI ----------------------------------

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def settings(db_url: str, monkeypatch: pytest.MonkeyPatch):
    """The dev settings pointed at this test's database, loaded as manage.py loads them."""
    from project.core.conf import load_settings

    monkeypatch.setenv("DEV_DATABASE_URL", db_url)
    monkeypatch.setenv("SETTINGS_MODULE", "dev")
    return load_settings("dev")


def manage_in_process(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    """`manage.py ARGS` as run_manage runs it, in this process: execute_from_command_line with the environment,
    PYTHONPATH (as sys.path entries) and working directory of the call, stdout and stderr captured, SystemExit
    as the return code and an uncaught exception as Python prints it (a traceback, 1). A CompletedProcess.

    For tests whose point is a command's output and exit code, not the process: it saves the interpreter's
    start-up and imports (about half a second a call). Real subprocesses stay for start-up, TTYs, signals,
    lazy imports and the end-to-end walks. Modules imported from the call's PYTHONPATH are forgotten after
    it, as a new process would not have them (a test may rewrite a models module between calls)."""
    import io
    import os
    import subprocess
    import traceback

    from project.core.management import execute_from_command_line

    full_env = {"NO_COLOR": "1", **(env or {})}
    paths = [p for p in full_env.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(TESTS_DIR)]
    saved_environ, saved_path, saved_cwd, saved_stdin = dict(os.environ), list(sys.path), os.getcwd(), sys.stdin
    # A new process imports the settings afresh: an earlier load's modules (the fixture's dev settings read
    # DEV_DATABASE_URL when imported) must not stand in for this call's.
    for name in [n for n in sys.modules if n.startswith(("settings.", "fixture_app.settings."))]:
        del sys.modules[name]
    before = set(sys.modules)
    stdout, stderr = io.StringIO(), io.StringIO()
    returncode = 0
    try:
        os.environ.update(full_env)
        sys.path[:0] = paths
        os.chdir(cwd or ROOT)
        sys.stdin = io.StringIO()  # nobody at a terminal: a command that would ask does not
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), _fresh_warnings():
            try:
                execute_from_command_line(["manage.py", *args])
            except SystemExit as exit_:
                if isinstance(exit_.code, str):
                    print(exit_.code, file=sys.stderr)
                returncode = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
            except Exception:  # what the interpreter does with an uncaught exception
                traceback.print_exc()
                returncode = 1
    finally:
        os.chdir(saved_cwd)
        sys.stdin = saved_stdin
        sys.path[:] = saved_path
        os.environ.clear()
        os.environ.update(saved_environ)
        for name in set(sys.modules) - before:
            file = getattr(sys.modules[name], "__file__", None) or ""
            if any(file.startswith(path) for path in paths):
                del sys.modules[name]
    return subprocess.CompletedProcess(["manage.py", *args], returncode, stdout.getvalue(), stderr.getvalue())


@contextlib.contextmanager
def _fresh_warnings() -> Iterator[None]:
    """Warnings as a new `python manage.py` has them: Python's default filters, then the tool's own (pytest
    resets filters after every test, dropping those the tool installed when its modules loaded), shown on
    stderr (pytest would record them instead, and a test asserting that none is printed would prove nothing)."""
    import warnings

    from project.core.history.scripts import install_warning_filters

    def show(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    with warnings.catch_warnings():
        warnings.resetwarnings()
        warnings.filterwarnings("default", category=DeprecationWarning, module="__main__", append=True)
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.filterwarnings("ignore", category=category, append=True)
        install_warning_filters()
        warnings.showwarning = show
        yield


def run_manage(*args: str, env: dict[str, str] | None = None, timeout: float = 120, in_process: bool = False,
               **kwargs):
    """`python manage.py ARGS` in a subprocess from the project root; returns the CompletedProcess.
    in_process=True: the same in this process (manage_in_process), where the process itself proves nothing."""
    if in_process:
        return manage_in_process(*args, env=env, **kwargs)
    import os
    import subprocess

    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=kwargs.pop("cwd", ROOT), env=full_env, capture_output=True, text=True, timeout=timeout, **kwargs,
    )


@pytest.fixture
def manage(db_url: str):
    """run_manage with DEV_DATABASE_URL (and the dev settings) pointed at this test's database."""

    def run(*args: str, env: dict[str, str] | None = None, **kwargs):
        return run_manage(*args, env={"DEV_DATABASE_URL": db_url, "SETTINGS_MODULE": "dev", **(env or {})}, **kwargs)

    return run


@pytest.fixture
def migrated_settings(settings):
    """The project's settings on a fresh database already migrated to head, on each engine in turn:
    the fixture for application tests (docs/testing.md)."""
    from project import migrate_database

    migrate_database(settings)
    return settings


@pytest.fixture
def migrated_db_url(migrated_settings) -> str:
    """URL of a fresh database at head, once per engine (see migrated_settings)."""
    return migrated_settings.DATABASE_URL


# --- the tool's fixture application (tests/fixture_app) ----------------------

TESTS_DIR = Path(__file__).resolve().parent
FIXTURE_SETTINGS = "fixture_app.settings.dev"


def fixture_env(db_url: str | None = None, settings_module: str = FIXTURE_SETTINGS, **extra: str) -> dict[str, str]:
    """Environment for a manage.py subprocess on the fixture application (tests/ on PYTHONPATH)."""
    env = {"SETTINGS_MODULE": settings_module, "PYTHONPATH": str(TESTS_DIR), **extra}
    if db_url:
        env["DEV_DATABASE_URL"] = db_url
    return env


def run_fixture_manage(*args: str, env: dict[str, str] | None = None, **kwargs):
    """run_manage on the fixture application's settings (dev flavour unless env says otherwise)."""
    return run_manage(*args, env={**fixture_env(), **(env or {})}, **kwargs)


@pytest.fixture
def fixture_settings(db_url: str, monkeypatch: pytest.MonkeyPatch):
    """The fixture application's dev settings pointed at this test's database (in-process)."""
    from project.core.conf import load_settings

    monkeypatch.setenv("DEV_DATABASE_URL", db_url)
    monkeypatch.setenv("SETTINGS_MODULE", FIXTURE_SETTINGS)
    return load_settings(FIXTURE_SETTINGS)


@pytest.fixture
def fixture_manage(db_url: str):
    """run_manage on the fixture application, with its database pointed at this test's database."""

    def run(*args: str, env: dict[str, str] | None = None, **kwargs):
        return run_manage(*args, env={**fixture_env(db_url), **(env or {})}, **kwargs)

    return run
