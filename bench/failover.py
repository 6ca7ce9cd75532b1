"""Time from a primary's death to `migrate` done on the new primary, on a Patroni cluster (issue 22, item 1).

scripts/dbservers.py starts etcd, two Patroni nodes (asynchronous streaming replication; ttl 20 s, loop_wait 1 s,
retry_timeout 5 s: the fastest Patroni allows) and HAProxy. For each address form (HAProxy, libpq's multi-host
URL with target_session_attrs=read-write) and each run: `manage.py migrate` of the fixture application's history
plus a revision that waits; while it waits, the primary's Patroni and postmaster are SIGKILLed. Nothing speeds
the failover up (the leader key expires by its ttl). From the kill, `manage.py migrate` is started again every
RETRY seconds until one exits 0; the figures are the time from the kill to the first writable primary through
the address, and to that migrate's end. Then the killed node rejoins (pg_rewind) before the next run.

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
import sqlalchemy as sa  # noqa: E402
from migcopy import MigrationsCopy, fixture_copy  # noqa: E402

RETRY = 0.5  # seconds between two attempts of migrate while no primary answers


def history(tmp: Path) -> tuple[MigrationsCopy, Path]:
    copy = fixture_copy(tmp, "prod")
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
    finally:
        cluster.stop()
    table = render(rows, up, catch_up, args.runs)
    print(table)
    if args.write:
        write_results(table)


def render(rows: list[tuple[str, list[tuple[float, float]]]], up: float, catch_up: list[float], runs: int) -> str:
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [f"`bench/failover.py --runs {runs}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average "
             f"{load} at the end (a shared 2-core machine). Patroni 3.0.2 with ttl 20 s, loop_wait 1 s, "
             f"retry_timeout 5 s; cluster up in {up:.1f} s. migrate retried every {RETRY} s after the kill.", "",
             "| address | kill to writable primary (s) | kill to migrate done (s) | runs |", "|---|---|---|---|"]
    for form, results in rows:
        writable = ", ".join(f"{w:.1f}" for w, _ in results)
        done = ", ".join(f"{d:.1f}" for _, d in results)
        lines.append(f"| {form} | {writable} | {done} | {len(results)} |")
    lines += ["", f"A standby replays a fault-free migrate's last commit {statistics.median(catch_up) * 1000:.1f} ms "
              f"after it (median of {len(catch_up)}; max {max(catch_up) * 1000:.1f} ms): the cost a migrate would pay "
              "to wait for its standbys before returning."]
    return "\n".join(lines)


def write_results(table: str) -> None:
    from report import write_section  # bench/ is on sys.path: this script's directory

    write_section("failover", "Failover mid-migration on Patroni (bench/failover.py)", table)


if __name__ == "__main__":
    main()
