"""Failed requests and latency during a rolling deploy, phased vs naive, per engine (issue 23, item 5).

The deploy is tests/rolling_app/deploy.py's, as tests/test_rolling_deploy.py runs it, with a heavier load: release
1 (INSTANCES uvicorn processes) serves items (a write, then a read of it through the next instance) behind a
client-side balancer that probes /health/ready; release 2 replaces it. Phased: `migrate` before (0002, expand;
the drop 0003 waits), release 2 in, release 1 out one by one, `migrate` after each (the last applies 0003).
Naive: one `migrate --break-running-instances` (0002 and the drop) before release 2 starts. Each run starts on
a fresh database; servers are the throwaway loopback ones of scripts/dbservers.py.

    .venv/bin/python bench/rolling.py [--runs 2] [--threads 4] [--pause 0.02] [--engines ...] [--write]

--write puts the table into bench/RESULTS.md between the rolling markers (other sections untouched).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "tests"), str(ROOT)]

import dbservers  # noqa: E402
from rolling_app.deploy import INSTANCES, Outcome, rolling_deploy  # noqa: E402

ENGINES = ("sqlite", "mysql", "postgresql")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="deploys per engine and kind")
    parser.add_argument("--threads", type=int, default=4, help="load threads (each: a write, then its read)")
    parser.add_argument("--pause", type=float, default=0.02, help="seconds between one thread's pairs")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds of load before and after the deploy")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--write", action="store_true", help="write the table into bench/RESULTS.md")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-rolling-"))
    base.chmod(0o711)
    rows: list[tuple[str, str, list[Outcome], list[float]]] = []
    try:
        for engine, server in dbservers.each_engine(args.engines, base):
            for phased in (True, False):
                outcomes, walls = [], []
                for run in range(args.runs):
                    work = base / f"{engine}-{'phased' if phased else 'naive'}-{run}"
                    work.mkdir()
                    url = (f"sqlite:///{work / 'rolling.db'}" if server is None
                           else server.create_database(f"rolling_{uuid.uuid4().hex[:8]}"))
                    started = time.monotonic()
                    outcomes.append(rolling_deploy(url, work, phased=phased, threads=args.threads,
                                                   pause=args.pause, settle=args.settle))
                    walls.append(time.monotonic() - started)
                    print(engine, "phased" if phased else "naive", len(outcomes[-1].failures), "failed of",
                          outcomes[-1].requests, f"p99 {outcomes[-1].p99_ms():.1f} ms", flush=True)
                rows.append((engine, "phased" if phased else "naive", outcomes, walls))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    table = render(rows, args)
    print(table)
    if args.write:
        from report import write_section  # bench/ is on sys.path: this script's directory

        write_section("rolling", "Rolling deploy under load, phased vs naive (bench/rolling.py)", table)


def render(rows: list[tuple[str, str, list[Outcome], list[float]]], args: argparse.Namespace) -> str:
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        f"`bench/rolling.py --runs {args.runs} --threads {args.threads} --pause {args.pause} --settle "
        f"{args.settle}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average {load} at the end "
        "(a shared 2-core machine, other sessions' tests running: latencies are this machine's, compare them "
        f"within the table). {INSTANCES} uvicorn instances per release, one worker each; every request that is "
        "not 2xx counts as failed (a 500 from release 1 on a dropped column, or no instance ready in the "
        "balancer). p50/p99: every request of the run (the deploy and the settle time around it), pooled over "
        "the runs.", "",
        "| engine | deploy | failed requests (per run) | requests (per run) | p50 ms | p99 ms | run wall (s) |",
        "|---|---|---|---|---|---|---|"]
    for engine, kind, outcomes, walls in rows:
        latencies = sorted(x for o in outcomes for x in o.latencies)
        p50 = 1000 * statistics.median(latencies) if latencies else 0.0
        p99 = 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else 0.0
        failed = ", ".join(str(len(o.failures)) for o in outcomes)
        total = ", ".join(str(o.requests) for o in outcomes)
        wall = ", ".join(f"{w:.1f}" for w in walls)
        lines.append(f"| {engine} | {kind} | {failed} | {total} | {p50:.1f} | {p99:.1f} | {wall} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
