"""Write stalls while `migrate` backfills a big, busy table: one UPDATE vs history.backfill (issue 23, item 4).

For each engine, `events` (ROWS rows, bench/stall.py's table) gets a nullable column `amount_big`; then, while a
writer thread updates random existing rows of it at a steady RATE per second on its own connection (the writes a
backfill gets in the way of: the same rows), `manage.py migrate` runs, in a subprocess, a revision that fills the
column: first as one `UPDATE events SET amount_big = amount`, then (on a fresh copy of the table) as
`backfill("events", {"amount_big": "amount"}, batch_size=BATCH, pause=PAUSE)`. The figures are the writes'
longest time and p99 (start to commit) while migrate ran. Servers are the throwaway loopback ones of
scripts/dbservers.py.

    .venv/bin/python bench/backfill.py --rows 1000000 --rate 100 [--engines postgresql,mysql,sqlite] [--write]

--write puts the table into bench/RESULTS.md between the backfill markers (other sections untouched).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "scripts"), str(ROOT)]

import dbservers  # noqa: E402
from sqlalchemy import create_engine  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402
from stall import Writer, case_project, fill, migrate_while_writing  # noqa: E402

VARIANTS = {
    "one UPDATE": 'op.execute("UPDATE events SET amount_big = amount")',
    "backfill": '''from project.core.history.backfill import backfill

backfill("events", {{"amount_big": "amount"}}, batch_size={batch}, pause={pause})''',
}


def run_variant(url: str, body: str, message: str, rows: int, rate: float, work: Path) -> dict[str, Any]:
    fill(url, rows)
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE events ADD COLUMN amount_big BIGINT NULL")
    engine.dispose()
    # The one UPDATE must be measured whole, not cut short by a statement timeout.
    env = case_project(work, url, body, message,
                       "MIGRATE_STATEMENT_TIMEOUT = 0\nMIGRATE_DDL_LOCK_TIMEOUT = 60\nMIGRATE_LOCK_RETRIES = 0\n")
    picker = random.Random(14)
    writer = Writer(url, rate, lambda: f"UPDATE events SET payload = 'live' WHERE id = {picker.randint(1, rows)}")
    result, started, ended = migrate_while_writing(writer, env, timeout=3600)
    outcome = "ok" if result.returncode == 0 else "FAILED: " + (result.stderr.strip() or result.stdout)[-160:]
    if writer.error is not None:
        outcome += f"; a write failed: {str(writer.error).splitlines()[0][:120]}"
    during = sorted(d for s, d in writer.samples if started <= s + d and s <= ended)
    quiet = sorted(d for s, d in writer.samples if s + d < started)
    return {"migrate_s": ended - started, "max_ms": 1000 * (during[-1] if during else 0.0),
            "p99_ms": 1000 * (during[int(0.99 * (len(during) - 1))] if during else 0.0),
            "p50_ms": 1000 * (during[len(during) // 2] if during else 0.0),
            "quiet_ms": 1000 * (quiet[len(quiet) // 2] if quiet else 0.0), "writes": len(during),
            "outcome": outcome}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=100.0, help="row updates per second")
    parser.add_argument("--batch", type=int, default=1000, help="the backfill's batch_size")
    parser.add_argument("--pause", type=float, default=0.05, help="the backfill's pause (s)")
    parser.add_argument("--engines", default="postgresql,mysql,sqlite")
    parser.add_argument("--write", action="store_true", help="write the table into bench/RESULTS.md")
    args = parser.parse_args()
    results: list[tuple[str, str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="backfill-") as tmp:
        base = Path(tmp)
        for engine, server in dbservers.each_engine(args.engines, base):
            for variant, body in VARIANTS.items():
                work = base / f"{engine}-{len(results)}"
                work.mkdir()
                name = f"backfill_{len(results)}"
                # SQLite: the writer waits for the write lock as the app's engine does (30 s), not 5 s.
                url = f"sqlite:///{work / 'bench.db'}?timeout=30" if server is None else \
                    server.create_database(name)
                figures = run_variant(url, body.format(batch=args.batch, pause=args.pause), variant,
                                      args.rows, args.rate, work)
                results.append((engine, variant, figures))
                print(f"{engine:10} {variant:10} max {figures['max_ms']:9.1f} ms  p99 {figures['p99_ms']:8.1f} ms"
                      f"  migrate {figures['migrate_s']:7.2f} s  writes {figures['writes']}  {figures['outcome']}",
                      flush=True)
                if server is not None:
                    server.drop_database(name)
    table = render(results, args)
    print(table)
    if args.write:
        from report import write_section

        write_section("backfill", "Write stalls while migrate backfills (bench/backfill.py)", table)


def render(results: list[tuple[str, str, dict[str, Any]]], args: argparse.Namespace) -> str:
    load = os.getloadavg()
    lines = [
        f"`bench/backfill.py --rows {args.rows} --rate {args.rate:g} --batch {args.batch} --pause {args.pause:g} "
        f"--engines {args.engines}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average "
        f"{load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} at the end. A shared 2-core machine, busy with other sessions' "
        "test suites while this ran: absolute times are noisy; compare the two rows of one engine.",
        "",
        "| engine | revision | longest write (ms) | p99 write (ms) | median write (ms) | migrate (s) | writes during "
        "| quiet write (ms) | outcome |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for engine, variant, f in results:
        lines.append(f"| {engine} | {variant} | {f['max_ms']:.1f} | {f['p99_ms']:.1f} | {f['p50_ms']:.1f} | "
                     f"{f['migrate_s']:.2f} | {int(f['writes'])} | {f['quiet_ms']:.1f} | "
                     f"{f['outcome'].replace('|', '/')} |")
    lines += ["", "Writes: `UPDATE events SET payload = 'live' WHERE id = <random>`, one per transaction, at the "
              "rate above, on the same rows the revision fills. One UPDATE: `UPDATE events SET amount_big = amount`; "
              f"backfill: `backfill(\"events\", {{\"amount_big\": \"amount\"}}, batch_size={args.batch}, "
              f"pause={args.pause:g})`, one transaction per batch (project/core/history/backfill.py).",
              "", "The writer is one connection writing one row at a time: while one UPDATE holds the row it wants, "
              "it waits, so a stall of seconds is one sample, and the p99 of the writes hides it; the longest "
              "write is the figure that says how long the application could not write."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
