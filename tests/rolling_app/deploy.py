"""A rolling deploy of the rolling application under a steady read/write load, as tests/test_rolling_deploy.py
and bench/rolling.py run it.

Release 1 (INSTANCES uvicorn processes, each its own server) serves from a database at 0001. A client-side
balancer sends each request to the next instance in its rotation that answered its last readiness probe
(/health/ready every PROBE seconds, as Kubernetes or a load balancer probes); LOAD_THREADS threads each write
an item (POST) and read it back (GET, from the next instance), PAUSE seconds apart. Then:

- phased: `migrate` (pre-deploy: 0002 applied, the contract 0003 held while release 1 runs); release 2 starts
  and joins the rotation once /health/ready answers 200; `migrate` again (still held); each release 1 instance
  leaves the rotation, finishes its requests in flight and stops (SIGTERM: it deletes its fleet row), `migrate`
  after each; the last one applies 0003.
- naive: one `migrate --break-running-instances` (0002 and the drop 0003 while release 1 serves), then release 2
  starts and release 1 stops as above.

Every request that does not answer 2xx is a failure, kept with what it got. Loops are bounded by HANG_GUARD
(never asserted on as a time).
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import sqlalchemy as sa

TESTS_DIR = Path(__file__).resolve().parent.parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))
from conftest import run_manage  # noqa: E402
from servers import Running, find_free_port, serve, version_rows  # noqa: E402

APP_DIR = Path(__file__).resolve().parent
INSTANCES = 2  # per release
LOAD_THREADS = 2
PAUSE = 0.05  # seconds between one thread's write+read pairs: about 40 requests a second in all
SETTLE = 1.0  # seconds of load before the deploy starts and after it ends
PROBE = 0.2  # seconds between two readiness probes of an instance in rotation
HANG_GUARD = 90.0


@dataclass
class Outcome:
    failures: list[str] = field(default_factory=list)  # "POST http://... -> 500", one per failed request
    latencies: list[float] = field(default_factory=list)  # seconds, every request
    served_by: dict[int, int] = field(default_factory=dict)  # release -> requests it answered
    migrates: list[tuple[str, str]] = field(default_factory=list)  # (what the step was, migrate's output)
    versions: list[tuple[str, list[str]]] = field(default_factory=list)  # (after which step, alembic_version)
    fleet: list[tuple[str, list[str]]] = field(default_factory=list)  # (before which step, "pid at head" rows)

    @property
    def requests(self) -> int:
        return len(self.latencies)

    def p99_ms(self) -> float:
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else 0.0


class Release:
    """One release's code: its settings module (a file of its own per run, so that no module cached by an
    earlier run stands in for it) and its copy of the history (release 1's stops at 0001)."""

    def __init__(self, tmp_path: Path, number: int, db_url: str, heartbeat: float, history: Path | None = None):
        self.number = number
        self.migrate_may_fail = False  # a control whose history is broken on purpose
        migrations = tmp_path / f"release{number}" / "migrations"
        shutil.copytree(history or APP_DIR / "migrations", migrations, ignore=shutil.ignore_patterns("__pycache__"))
        if number == 1:
            for later in (migrations / "versions").glob("*.py"):
                if not later.name.startswith("0001_"):
                    later.unlink()
        self.module = f"rolling_settings_{uuid.uuid4().hex[:8]}_r{number}"
        (tmp_path / f"{self.module}.py").write_text(
            "from rolling_app.settings import *  # noqa: F403\n"
            f"RELEASE = {number}\nMIGRATIONS_DIR = {str(migrations)!r}\nDATABASE_URL = {db_url!r}\n"
            f"FLEET_HEARTBEAT = {heartbeat!r}\n")
        self.env = {"SETTINGS_MODULE": self.module, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(TESTS_DIR)]),
                    "NO_COLOR": "1"}

    def migrate(self, *args: str) -> str:
        result = run_manage("migrate", *args, env=self.env, in_process=True)
        assert result.returncode == 0 or self.migrate_may_fail, result.stdout + result.stderr
        return result.stdout + result.stderr

    @contextmanager
    def instance(self, log_dir: Path, name: str) -> Iterator[Running]:
        port = find_free_port()
        args = [sys.executable, "-m", "uvicorn", "rolling_app.app:app", "--host", "127.0.0.1", "--port", str(port),
                "--no-access-log"]
        with serve(args, {**os.environ, **self.env}, log_dir / f"{name}.log", port) as running:
            yield running


class Balancer:
    """Round robin over the instances in rotation that answered their last readiness probe (/health/ready, every
    PROBE seconds, as Kubernetes or a load balancer probes); remove() drains one (no new request, those in
    flight end). With no instance ready, a request fails at once, as a load balancer's 503 would."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rotation: list[str] = []
        self.unready: set[str] = set()
        self.in_flight: dict[str, int] = {}
        self.turn = 0
        self.stopping = threading.Event()
        self.prober = threading.Thread(target=self._probe, daemon=True)

    def __enter__(self) -> Balancer:
        self.prober.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.prober.join(HANG_GUARD)

    def add(self, url: str) -> None:
        with self.lock:
            self.rotation.append(url)
            self.in_flight.setdefault(url, 0)

    def remove(self, url: str) -> None:
        with self.lock:
            self.rotation.remove(url)
        wait_for(lambda: self.in_flight[url] == 0, f"the requests in flight on {url}")

    @contextmanager
    def pick(self) -> Iterator[str | None]:
        with self.lock:
            ready = [url for url in self.rotation if url not in self.unready]
            url = ready[self.turn % len(ready)] if ready else None
            self.turn += 1
            if url is not None:
                self.in_flight[url] += 1
        try:
            yield url
        finally:
            if url is not None:
                with self.lock:
                    self.in_flight[url] -= 1

    def _probe(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self.stopping.wait(PROBE):
                with self.lock:
                    urls = list(self.rotation)
                for url in urls:
                    try:
                        ok = client.get(url + "/health/ready").status_code == 200
                    except httpx.TransportError:
                        ok = False
                    with self.lock:
                        (self.unready.discard if ok else self.unready.add)(url)


class Load:
    """LOAD_THREADS threads writing and reading items through the balancer until stopped."""

    def __init__(self, balancer: Balancer, outcome: Outcome, threads: int, pause: float, check_values: bool = False):
        self.balancer, self.outcome, self.pause = balancer, outcome, pause
        self.check_values = check_values  # a read must give back the value written, whichever release wrote it
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(HANG_GUARD)

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            n = 0
            while not self.stopping.is_set():
                n += 1
                text = f"item {threading.get_ident()} {n}"
                body = self._request(client, "POST", "/items", {"body": text})
                if body is not None:
                    read = self._request(client, "GET", f"/items/{body['id']}")
                    # Release 1 reads legacy, release 2 note: renamed columns, the same value.
                    value = None if read is None else read.get("legacy", read.get("note"))
                    if self.check_values and read is not None and value != text:
                        with self.lock:
                            self.outcome.failures.append(
                                f"GET /items/{body['id']} (release {read['release']}, written by release "
                                f"{body['release']}) -> {value!r}, not the {text!r} written")
                self.stopping.wait(self.pause)

    def _request(self, client: httpx.Client, method: str, path: str, payload: object = None) -> dict | None:
        with self.balancer.pick() as url:
            started = time.perf_counter()
            if url is None:
                with self.lock:
                    self.outcome.latencies.append(0.0)
                    self.outcome.failures.append(f"{method} {path} -> no instance ready")
                return None
            try:
                response = client.request(method, url + path, json=payload)
                failure = None if response.is_success else f"{method} {url}{path} -> {response.status_code}"
            except httpx.HTTPError as exc:
                response, failure = None, f"{method} {url}{path} -> {type(exc).__name__}: {exc}"
            took = time.perf_counter() - started
        with self.lock:
            self.outcome.latencies.append(took)
            if failure is not None:
                self.outcome.failures.append(failure)
                return None
            body = response.json()  # type: ignore[union-attr]
            self.outcome.served_by[body["release"]] = self.outcome.served_by.get(body["release"], 0) + 1
            return body


def rolling_deploy(db_url: str, tmp_path: Path, *, phased: bool, instances: int = INSTANCES,
                   heartbeat: float = 30.0, threads: int = LOAD_THREADS, pause: float = PAUSE,
                   settle: float = SETTLE, history: Path | None = None, check_values: bool = False,
                   migrate_may_fail: bool = False) -> Outcome:
    """Release 1 serving under load, then the deploy of release 2 (module docstring); what the load saw.
    `history`: release 2's migrations (release 1's is its 0001), default the app's; `check_values`: every read
    must give back the value written (a rename: legacy and note hold the same value)."""
    old = Release(tmp_path, 1, db_url, heartbeat, history)
    new = Release(tmp_path, 2, db_url, heartbeat, history)
    new.migrate_may_fail = migrate_may_fail
    outcome = Outcome()
    old.migrate()  # release 1's history: 0001

    def migrate(step: str, *args: str) -> None:
        outcome.fleet.append((step, fleet_rows(db_url)))
        outcome.migrates.append((step, new.migrate(*args)))
        outcome.versions.append((step, version_rows(db_url)))

    with ExitStack() as stack:
        balancer = stack.enter_context(Balancer())
        olds = start(stack, old, tmp_path, instances, "release1")
        for running in olds.values():
            balancer.add(running.base_url)
        with Load(balancer, outcome, threads, pause, check_values):
            time.sleep(settle)
            if phased:
                migrate("pre-deploy")
            else:
                migrate("naive", "--break-running-instances")
            for running in start(stack, new, tmp_path, instances, "release2").values():
                wait_for(lambda r=running: ready(r), f"{r_name(running)} ready")
                balancer.add(running.base_url)
            if phased:
                migrate("release 2 up, release 1 still serving")
            for name, running in olds.items():
                balancer.remove(running.base_url)
                stack_stop(running)
                if phased:
                    migrate(f"{name} stopped")
            time.sleep(settle)
    return outcome


def start(stack: ExitStack, release: Release, tmp_path: Path, count: int, prefix: str) -> dict[str, Running]:
    """`count` instances of `release`, started together; returned once each answers /health."""
    from servers import wait_until_up

    started = {f"{prefix}-{i}": stack.enter_context(release.instance(tmp_path, f"{prefix}-{i}"))
               for i in range(1, count + 1)}
    for running in started.values():
        wait_until_up(running)
    return started


def stack_stop(running: Running) -> None:
    """SIGTERM, as an orchestrator stops an instance: uvicorn ends its requests, then the lifespan's shutdown
    deletes the fleet row. (The ExitStack's own stop at the end finds it gone.)"""
    from servers import stop

    stop(running.process)


def ready(running: Running) -> bool:
    try:
        return httpx.get(running.base_url + "/health/ready", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def r_name(running: Running) -> str:
    return running.log_path.stem


def fleet_rows(db_url: str) -> list[str]:
    from project.core.runner import fleet

    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return [f"pid {i.pid} at {i.head}" for i in fleet.read(connection)]
    finally:
        engine.dispose()


def wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.05)


# Release 2's models for the rename (rename_migrations: release 1's 0001 has items.legacy NOT NULL).
RENAME_MODELS = """
import sqlalchemy as sa

metadata = sa.MetaData()
items = sa.Table(
    "items", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("body", sa.String(200), nullable=False),
    sa.Column("note", sa.String(200), nullable=False),
)
"""


def rename_history(tmp_path: Path, answer: str = "2") -> tuple[Path, list[str]]:
    """rename_migrations' 0001 and what `makemigrations` writes on a terminal (pexpect) for release 2's models,
    items.legacy renamed to items.note, answered `answer` (2: in two phases). The history and the ids written."""
    import pexpect

    history = tmp_path / "rename" / "migrations"
    shutil.copytree(APP_DIR / "rename_migrations", history, ignore=shutil.ignore_patterns("__pycache__"))
    tag = uuid.uuid4().hex[:8]
    (tmp_path / f"rename_models_{tag}.py").write_text(RENAME_MODELS)
    (tmp_path / f"rename_settings_{tag}.py").write_text(
        "from rolling_app.settings import *  # noqa: F403\n"
        f"MIGRATIONS_DIR = {str(history)!r}\nDATABASE_URL = 'sqlite://'\n"
        f"TARGET_METADATA = 'rename_models_{tag}:metadata'\n")
    env = {**os.environ, "SETTINGS_MODULE": f"rename_settings_{tag}", "TERM": "dumb", "NO_COLOR": "1",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(TESTS_DIR)])}
    child = pexpect.spawn(sys.executable, [str(TESTS_DIR.parent / "manage.py"), "makemigrations"],
                          cwd=str(TESTS_DIR.parent), env=env, encoding="utf-8", timeout=90)
    try:
        child.expect_exact("Was items.legacy renamed to items.note (a String)? [y/N] ")
        child.sendline("y")
        child.expect_exact("Select an option: ")
        child.sendline(answer)
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0, child.before
    ids = sorted(p.name[:11] for p in (history / "versions").glob("*.py") if not p.name.startswith("0001_"))
    return history, ids
