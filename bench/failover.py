"""Time from a primary's death to `migrate` done on the new primary, and to the app's /health/ready 200, on a
Patroni cluster (issue 22, items 1 and 2).

scripts/dbservers.py starts etcd, two Patroni nodes (asynchronous streaming replication; ttl 20 s, loop_wait 1 s,
retry_timeout 5 s: the fastest Patroni allows) and HAProxy. For each address form (HAProxy, libpq's multi-host
URL with target_session_attrs=read-write) and each run: `manage.py migrate` of the fixture application's history
plus a revision that waits; while it waits, the primary's Patroni and postmaster are SIGKILLed. Nothing speeds
the failover up (the leader key expires by its ttl). From the kill, `manage.py migrate` is started again every
RETRY seconds until one exits 0; the figures are the time from the kill to the first writable primary through
the address, and to that migrate's end. Then the killed node rejoins (pg_rewind) before the next run.

Then the app (uvicorn, start-up migrations on) through each address form: the primary killed while one worker
serves, and while three workers start (one inside a revision, two waiting for its lock); the time from the kill to
the first /health/ready 200, and to every worker started.

Also measured: after a fault-free migrate, how long the standby takes to replay its last commit (the cost a
migrate would pay to wait for its standbys before returning).

    .venv/bin/python bench/failover.py [--runs 2] [--write]

--write puts the table into bench/RESULTS.md between the failover markers (other sections untouched).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts"), str(ROOT / "tests")]

import dbservers  # noqa: E402
import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from migcopy import MigrationsCopy, fixture_copy  # noqa: E402

RETRY = 0.5  # seconds between two attempts of migrate while no primary answers


def history(tmp: Path, base: str = "prod") -> tuple[MigrationsCopy, Path]:
    copy = fixture_copy(tmp, base)
    markers = tmp / "markers"
    markers.mkdir()
    copy.add("0009", "0008", message="waits", upgrade=f"""
        import pathlib, time
        op.create_table("mid_a", sa.Column("id", sa.Integer(), primary_key=True))
        context = op.get_context()
        online = context.dialect.name == "postgresql" and not context.as_sql
        marker = pathlib.Path({str(markers)!r}) / f"{{op.get_bind().engine.url.database if online else ''}}"
        if online and not marker.exists():
            marker.touch()
            deadline = time.monotonic() + 120
            while not pathlib.Path(str(marker) + ".go").exists() and time.monotonic() < deadline:
                time.sleep(0.02)  # the primary dies meanwhile; then the next statement finds it gone
        op.create_table("mid_b", sa.Column("id", sa.Integer(), primary_key=True))
    """, downgrade='op.drop_table("mid_b")\nop.drop_table("mid_a")')
    return copy, markers


def command(copy: MigrationsCopy, url: str) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "NO_COLOR": "1", **copy.env(), "PROD_DATABASE_URL": url, "CONFIRM_DESTRUCTIVE": "0"}
    return [sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], env


def one_run(cluster: dbservers.PatroniCluster, copy: MigrationsCopy, markers: Path, form: str) -> tuple[float, float]:
    name = f"b_{uuid.uuid4().hex[:10]}"
    cluster.create_database(name)
    url = cluster.url(name) if form == "HAProxy" else cluster.multi_host_url(name)
    argv, env = command(copy, url)
    first = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (markers / name).exists():
        if first.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"migrate never reached its wait: {first.communicate()}")
        time.sleep(0.02)
    cluster.kill_primary()
    killed = time.monotonic()
    (markers / f"{name}.go").touch()
    first.communicate(timeout=120)
    writable: list[float] = []

    def watch() -> None:  # apart from the migrate attempts, which may wait inside HAProxy's queue
        while not can_write(url):
            time.sleep(0.1)
        writable.append(time.monotonic() - killed)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    while True:
        done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
        if done.returncode == 0:
            finished = time.monotonic() - killed
            break
        if time.monotonic() - killed > 180:
            raise RuntimeError(f"no migrate succeeded within 180 s: {done.stderr}")
        time.sleep(RETRY)
    watcher.join(timeout=180)
    cluster.drop_database(name)
    cluster.heal()
    return writable[0], finished


def ready_run(cluster: dbservers.PatroniCluster, copy: MigrationsCopy, markers: Path, form: str,
              case: str) -> tuple[float, float]:
    """uvicorn on the fixture application (dev settings) through `form`, start-up migrations on; the primary killed
    (nothing speeds the failover up). `serving`: one worker, started and answering 200 before the kill. `start-up`:
    three workers, the kill inside 0009 while one migrates and the others wait for its lock. Returns the seconds
    from the kill to the first /health/ready 200 after it, and to every worker having started."""
    name = f"b_{uuid.uuid4().hex[:10]}"
    cluster.create_database(name)
    url = cluster.url(name) if form == "HAProxy" else cluster.multi_host_url(name)
    workers = 1 if case == "serving" else 3
    if case == "serving":
        (markers / name).touch()  # 0009 does not wait
    port = dbservers.find_free_port()
    log_path = markers.parent / f"{name}.log"
    env = {**os.environ, **copy.env(url), "MIGRATE_ON_STARTUP": "1", "MIGRATE_ON_STARTUP_WAIT": "180",
           "NO_COLOR": "1"}
    ready_url = f"http://127.0.0.1:{port}/health/ready"
    with open(log_path, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "project.app.asgi:app", "--host", "127.0.0.1", "--port", str(port),
             "--workers", str(workers)], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        def started() -> int:
            return log_path.read_text(errors="replace").count("Application startup complete.")

        deadline = time.monotonic() + 180
        while not ((case == "serving" and ready_status(ready_url) == 200) or (markers / name).exists()):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the app never got there:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.05)
        cluster.wait_for_standbys()
        cluster.kill_primary()
        killed = time.monotonic()
        (markers / f"{name}.go").touch()
        seen_down = case == "start-up"  # no worker serves yet
        while True:
            answer = ready_status(ready_url)
            seen_down = seen_down or answer != 200
            if seen_down and answer == 200:
                ready = time.monotonic() - killed
                break
            if server.poll() is not None or time.monotonic() - killed > 180:
                raise RuntimeError(f"/health/ready never answered 200 again:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.05)
        while started() < workers:
            if server.poll() is not None or time.monotonic() - killed > 180:
                raise RuntimeError(f"not every worker started:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.05)
        every = time.monotonic() - killed
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait()
    cluster.drop_database(name)
    cluster.heal()
    return ready, every


def ready_status(ready_url: str) -> int | None:
    try:
        return httpx.get(ready_url, timeout=1).status_code
    except httpx.TransportError:
        return None


def can_write(url: str) -> bool:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 2})
    try:
        with engine.connect() as connection:
            return connection.scalar(sa.text("SELECT NOT pg_is_in_recovery()")) is True
    except sa.exc.DBAPIError:
        return False
    finally:
        engine.dispose()


def replay_catch_up(cluster: dbservers.PatroniCluster, copy: MigrationsCopy, markers: Path) -> float:
    """After a fault-free migrate: seconds until every standby has replayed the primary's last WAL position."""
    name = f"b_{uuid.uuid4().hex[:10]}"
    url = cluster.create_database(name)
    (markers / name).touch()
    argv, env = command(copy, url)
    subprocess.run(argv, env=env, cwd=ROOT, check=True, capture_output=True, timeout=300)
    engine = sa.create_engine(cluster.url("postgres"), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            start = time.monotonic()
            lsn = connection.scalar(sa.text("SELECT pg_current_wal_lsn()"))
            while not connection.scalar(sa.text(
                    "SELECT count(*) > 0 AND bool_and(replay_lsn >= CAST(:lsn AS pg_lsn)) FROM pg_stat_replication"),
                    {"lsn": lsn}):
                connection.rollback()
                time.sleep(0.001)
            return time.monotonic() - start
    finally:
        engine.dispose()
        cluster.drop_database(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="kills per address form")
    parser.add_argument("--write", action="store_true", help="write the table into bench/RESULTS.md")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-failover-"))
    base.chmod(0o711)
    started = time.monotonic()
    cluster = dbservers.start_patroni_cluster(base)
    up = time.monotonic() - started
    try:
        copy, markers = history(base / "history")
        catch_up = [replay_catch_up(cluster, copy, markers) for _ in range(5)]
        rows = []
        for form in ("HAProxy", "multi-host URL"):
            runs = [one_run(cluster, copy, markers, form) for _ in range(args.runs)]
            rows.append((form, runs))
            print(form, runs, flush=True)
        app_copy, app_markers = history(base / "app-history", "dev")
        ready_rows = []
        for form in ("HAProxy", "multi-host URL"):
            for case in ("serving", "start-up"):
                runs = [ready_run(cluster, app_copy, app_markers, form, case) for _ in range(args.runs)]
                ready_rows.append((form, case, runs))
                print(form, case, runs, flush=True)
    finally:
        cluster.stop()
    table = render(rows, ready_rows, up, catch_up, args.runs)
    print(table)
    if args.write:
        write_results(table)


Runs = list[tuple[float, float]]


def render(rows: list[tuple[str, Runs]], ready_rows: list[tuple[str, str, Runs]], up: float, catch_up: list[float],
           runs: int) -> str:
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [f"`bench/failover.py --runs {runs}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average "
             f"{load} at the end (a shared 2-core machine). Patroni 3.0.2 with ttl 20 s, loop_wait 1 s, "
             f"retry_timeout 5 s; cluster up in {up:.1f} s. migrate retried every {RETRY} s after the kill.", "",
             "| address | kill to writable primary (s) | kill to migrate done (s) | runs |", "|---|---|---|---|"]
    for form, results in rows:
        writable = ", ".join(f"{w:.1f}" for w, _ in results)
        done = ", ".join(f"{d:.1f}" for _, d in results)
        lines.append(f"| {form} | {writable} | {done} | {len(results)} |")
    lines += ["", "The app through the same failovers (uvicorn on the fixture application, start-up migrations on, "
              "MIGRATE_ON_STARTUP_WAIT 180 s; /health/ready polled every 50 ms). serving: one worker answering 200 "
              "when the primary dies; start-up: three workers, the kill inside a revision one of them applies while "
              "the others wait for its lock.", "",
              "| address | case | kill to /health/ready 200 (s) | kill to every worker started (s) | runs |",
              "|---|---|---|---|---|"]
    for form, case, results in ready_rows:
        ready = ", ".join(f"{r:.1f}" for r, _ in results)
        every = ", ".join(f"{e:.1f}" for _, e in results) if case == "start-up" else "(started before the kill)"
        lines.append(f"| {form} | {case} | {ready} | {every} | {len(results)} |")
    lines += ["", "The machine was loaded throughout (other sessions' test runs on the same two cores): compare the "
              "rows of one run, not with other sections."]
    lines += ["", f"A standby replays a fault-free migrate's last commit {statistics.median(catch_up) * 1000:.1f} ms "
              f"after it (median of {len(catch_up)}; max {max(catch_up) * 1000:.1f} ms): the cost a migrate would pay "
              "to wait for its standbys before returning."]
    return "\n".join(lines)


def write_results(table: str) -> None:
    from report import write_section  # bench/ is on sys.path: this script's directory

    write_section("failover", "Failover mid-migration on Patroni (bench/failover.py)", table)


if __name__ == "__main__":
    main()
