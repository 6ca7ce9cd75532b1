"""Write stalls while `migrate` runs a typical revision on a large, busy table (issue 14, item 4).

For each engine and each change (add an index, add a NOT NULL column with a default, change a column's
type), a writer thread inserts into `events` (ROWS rows) at a steady RATE per second on its own connection
while `manage.py migrate` runs, in a subprocess, first the naive revision, then (on a fresh copy of the
table) the one the lint recommends. The figure is the longest insert (start to commit) while migrate ran:
the longest time the application could not write. Servers are the throwaway loopback ones of
scripts/dbservers.py; every loop is bounded (the writer stops when migrate has exited, plus one second).

    .venv/bin/python bench/stall.py --rows 1000000 --rate 100 [--engines postgresql,mysql,sqlite] [--write]

--write puts the table into bench/RESULTS.md between the stall markers (other sections untouched).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT)]

import dbservers  # noqa: E402
from sqlalchemy import create_engine  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

# Each case: the naive revision body and the lint-recommended one, as Alembic code inside upgrade().
CASES: dict[str, tuple[str, str, str]] = {
    "add an index": (
        'op.create_index("ix_events_account", "events", ["account_id"])',
        # PostgreSQL: CONCURRENTLY outside the transaction (P112). MariaDB/MySQL: say INPLACE/LOCK=NONE so the
        # server refuses rather than copies. SQLite has no online build: the same file.
        '''if op.get_bind().dialect.name in ("mysql", "mariadb"):
    op.execute("ALTER TABLE events ADD INDEX ix_events_account (account_id), ALGORITHM=INPLACE, LOCK=NONE")
else:
    with op.get_context().autocommit_block():
        op.create_index("ix_events_account", "events", ["account_id"], postgresql_concurrently=True)''',
        "CREATE INDEX (naive) vs CONCURRENTLY / ALGORITHM=INPLACE, LOCK=NONE",
    ),
    "add a NOT NULL column with a default": (
        # The pattern written to avoid a server default: add, backfill, then NOT NULL, in one transaction.
        '''op.add_column("events", sa.Column("status", sa.String(20), nullable=True))
op.execute("UPDATE events SET status = 'new'")
with op.batch_alter_table("events") as batch_op:
    batch_op.alter_column("status", existing_type=sa.String(20), nullable=False)''',
        # A constant server default: metadata only on PostgreSQL >= 11 and MariaDB >= 10.3 (INSTANT).
        'op.add_column("events", sa.Column("status", sa.String(20), nullable=False, server_default="new"))',
        "add + UPDATE + SET NOT NULL (naive) vs one ADD COLUMN ... NOT NULL DEFAULT 'new'",
    ),
    "change a column type": (
        '''with op.batch_alter_table("events") as batch_op:
    batch_op.alter_column("amount", type_=sa.BigInteger(), existing_type=sa.Integer(), existing_nullable=False)''',
        # Expand: a new nullable column (metadata only) backfilled in committed batches; the swap is a later
        # release's contract step.
        '''op.add_column("events", sa.Column("amount_big", sa.BigInteger(), nullable=True))
bind = op.get_bind()
with op.get_context().autocommit_block():
    top = bind.execute(sa.text("SELECT max(id) FROM events")).scalar() or 0
    for start in range(0, top + 1, 20000):
        bind.execute(sa.text("UPDATE events SET amount_big = amount WHERE id >= :a AND id < :b"),
                     {"a": start, "b": start + 20000})''',
        "ALTER COLUMN TYPE (naive) vs new column + batched backfill (expand step)",
    ),
}

REVISION = '''"""{message}

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
{body}


def downgrade() -> None:
    raise NotImplementedError
'''


def fill(url: str, rows: int) -> None:
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as connection:
        dialect = connection.dialect.name
        key = {"postgresql": "id BIGSERIAL PRIMARY KEY", "mysql": "id BIGINT AUTO_INCREMENT PRIMARY KEY",
               "sqlite": "id INTEGER PRIMARY KEY"}[dialect]
        connection.exec_driver_sql(f"CREATE TABLE events ({key}, account_id INTEGER NOT NULL, "
                                   "amount INTEGER NOT NULL, payload VARCHAR(64) NOT NULL)")
        if dialect == "postgresql":
            source = f"SELECT mod(g, 1000), mod(g, 97), 'payload ' || g FROM generate_series(1, {rows}) g"
        elif dialect == "mysql":
            source = f"SELECT MOD(seq, 1000), MOD(seq, 97), CONCAT('payload ', seq) FROM seq_1_to_{rows}"
        else:
            source = (f"WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {rows}) "
                      "SELECT n % 1000, n % 97, 'payload ' || n FROM g")
        connection.exec_driver_sql(f"INSERT INTO events (account_id, amount, payload) {source}")
    if dialect == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE events")
    engine.dispose()


class Writer(threading.Thread):
    """Inserts one row every 1/rate s on its own connection; records each insert's start and duration.
    `statement()`: another write to time instead (bench/backfill.py updates existing rows)."""

    def __init__(self, url: str, rate: float, statement: Any = None):
        super().__init__(daemon=True)
        self.url, self.interval = url, 1.0 / rate
        self.statement = statement or (lambda: "INSERT INTO events (account_id, amount, payload) VALUES (1, 2, 'live')")
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.failed_at = float("inf")

    def run(self) -> None:
        engine = create_engine(self.url, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                next_at = time.perf_counter()
                while not self.stop.is_set():
                    start = time.perf_counter()
                    try:
                        connection.exec_driver_sql(self.statement())
                        connection.commit()
                    except Exception as exc:
                        # The naive NOT NULL revision leaves a column the old insert does not fill: the
                        # insert waited for the migration, then failed. Its wait still counts.
                        self.samples.append((start, time.perf_counter() - start))
                        self.failed_at, self.error = time.perf_counter(), exc
                        return
                    self.samples.append((start, time.perf_counter() - start))
                    next_at = max(next_at + self.interval, time.perf_counter())
                    self.stop.wait(max(0.0, next_at - time.perf_counter()))
        finally:
            engine.dispose()


def case_project(work: Path, url: str, body: str, message: str, settings: str) -> dict[str, str]:
    """A one-revision history in `work` (the fixture app's env.py, `body` as the revision's upgrade) and a settings
    module on `url` with `settings` (extra lines); the environment that runs `manage.py` on them."""
    migrations = work / "migrations"
    shutil.rmtree(migrations, ignore_errors=True)
    (migrations / "versions").mkdir(parents=True)
    source = ROOT / "tests" / "fixture_app" / "migrations"
    shutil.copy(source / "env.py", migrations / "env.py")
    shutil.copy(source / "script.py.mako", migrations / "script.py.mako")
    (migrations / "versions" / "0001_case.py").write_text(
        REVISION.format(message=message, body=textwrap.indent(body, "    ")))
    (work / "case_settings.py").write_text(
        "from fixture_app.settings.base import *  # noqa\n"
        f"DATABASE_URL = {url!r}\nMIGRATIONS_DIR = {str(migrations)!r}\n{settings}")
    return {**os.environ, "SETTINGS_MODULE": "case_settings", "NO_COLOR": "1",
            "PYTHONPATH": os.pathsep.join([str(work), str(ROOT / "tests")])}


def migrate_while_writing(writer: Writer, env: dict[str, str],
                          timeout: float) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """`manage.py migrate` in `env` while `writer` writes, with a second of writes alone before and after it;
    the result, and when migrate started and ended (perf_counter, the clock of the writer's samples)."""
    writer.start()
    time.sleep(1.0)  # the writer's quiet baseline
    started = time.perf_counter()
    result = subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=timeout)
    ended = time.perf_counter()
    time.sleep(1.0)
    writer.stop.set()
    writer.join(timeout=120)
    return result, started, ended


def run_case(url: str, body: str, message: str, rows: int, rate: float, work: Path) -> dict[str, Any]:
    fill(url, rows)
    # Long enough that the naive revision is measured, not cut short by its own lock timeout.
    env = case_project(work, url, body, message, "MIGRATE_DDL_LOCK_TIMEOUT = 60\nMIGRATE_LOCK_RETRIES = 0\n")
    writer = Writer(url, rate)
    result, started, ended = migrate_while_writing(writer, env, timeout=1800)
    # An insert failing before the revision was recorded would be the bench's own fault.
    if writer.failed_at < started:
        raise SystemExit(f"{message}: the writer failed before migrate started: {writer.error!r}")
    # A naive revision may itself fail under concurrent writes (MySQL: rows inserted after the backfill break
    # SET NOT NULL): a finding, reported with the stall it caused.
    outcome = "ok" if result.returncode == 0 else "FAILED: " + result.stderr.strip()[:160]
    during = [d for s, d in writer.samples if started <= s + d and s <= ended]
    quiet = [d for s, d in writer.samples if s + d < started]
    ordered = sorted(during)
    return {"migrate_s": ended - started, "stall_ms": 1000 * max(during, default=0.0),
            "p99_ms": 1000 * (ordered[int(0.99 * (len(ordered) - 1))] if ordered else 0.0),
            "baseline_ms": 1000 * (statistics.median(quiet) if quiet else 0.0), "inserts": len(during),
            "outcome": outcome}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=100.0, help="inserts per second")
    parser.add_argument("--engines", default="postgresql,mysql,sqlite")
    parser.add_argument("--write", action="store_true", help="write the table into bench/RESULTS.md")
    args = parser.parse_args()
    results: list[tuple[str, str, str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="stall-") as tmp:
        base = Path(tmp)
        for engine, server in dbservers.each_engine(args.engines, base):
            for case, (naive, safe, _) in CASES.items():
                for variant, body in (("naive", naive), ("lint-recommended", safe)):
                    work = base / f"{engine}-{len(results)}"
                    work.mkdir()
                    if server is None:
                        url = f"sqlite:///{work / 'stall.db'}"
                    else:
                        url = server.create_database(f"stall_{len(results)}")
                    figures = run_case(url, body, f"{case} ({variant})", args.rows, args.rate, work)
                    results.append((engine, case, variant, figures))
                    print(f"{engine:10} {case:38} {variant:17} stall {figures['stall_ms']:9.1f} ms  "
                          f"migrate {figures['migrate_s']:6.2f} s  baseline {figures['baseline_ms']:.1f} ms  "
                          f"{figures['outcome']}",
                          flush=True)
                    if server is not None:
                        server.drop_database(f"stall_{len(results) - 1}")
    table = render(results, args)
    print(table)
    if args.write:
        write_results(table)


def render(results: list[tuple[str, str, str, dict[str, Any]]], args: argparse.Namespace) -> str:
    load = os.getloadavg()
    lines = [
        f"`bench/stall.py --rows {args.rows} --rate {args.rate:g} --engines {args.engines}`, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average {load[0]:.1f}/{load[1]:.1f}/"
        f"{load[2]:.1f} at the end (a shared 2-core machine: absolute times are noisy, the stall ratios are not).",
        "",
        "| engine | change | revision | longest write stall (ms) | p99 insert (ms) | migrate (s) | inserts during "
        "| quiet insert (ms) | migrate |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for engine, case, variant, f in results:
        lines.append(f"| {engine} | {case} | {variant} | {f['stall_ms']:.1f} | {f['p99_ms']:.1f} | "
                     f"{f['migrate_s']:.2f} | "
                     f"{int(f['inserts'])} | {f['baseline_ms']:.1f} | {f['outcome'].replace('|', '/')} |")
    lines += ["", "Revisions: " + "; ".join(f"{case}: {note}" for case, (_, _, note) in CASES.items()) + "."]
    return "\n".join(lines)




def write_results(table: str) -> None:
    from report import write_section  # bench/ is on sys.path: this script's directory

    write_section("stall", "Write stalls while migrate runs (bench/stall.py)", table)


if __name__ == "__main__":
    main()
