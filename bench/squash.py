#!/usr/bin/env python
"""Fresh `migrate` of a generated history squashed to one revision, against the raw-SQL floor (on demand).

    .venv/bin/python bench/squash.py                 # N=300, three engines, 5 runs, the whole table twice
    .venv/bin/python bench/squash.py --n 20 --runs 1 --warmup 0 --repeat 1 --no-write   # smoke run

The tree is bench/histories.make_tree(N) (the project's 8 revisions + N generated ones); a copy of it gets
`manage.py squashmigrations 0001 b<N>`, so the whole history is one squash. Rows, timed interleaved as in
bench/run.py: `manage.py migrate` on the squashed tree, on the original tree, and two raw-SQL floors applied by the
engine's own client: the history's SQL (bench/run.py's floor: `alembic upgrade --sql`, `sqlmigrate` on SQLite) and a
dump of the end state (`sqlite3 .dump`, `pg_dump`, `mariadb-dump` of a database at head: the least SQL that builds
it). One more row runs the squashed migrate in-process (project.migrate_database() in a Python that has imported
SQLAlchemy, Alembic, the driver and the tool already, as an app's test session or start-up does) and times only
the call. The table is measured `--repeat` times; only ratios within one table compare (the machine is shared).
The rows go into bench/RESULTS.md between the "squash" markers, and bench/squash_results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run  # noqa: E402 - the suite's timing and databases
from run import Bench, Database, Row, measure, ratio, sh  # noqa: E402

BEGIN, END = "<!-- squash:begin -->", "<!-- squash:end -->"

# project.migrate_database() in a process that has imported what it needs already, as an app's test session or
# its start-up migrations call it: the migrate alone is timed (the interpreter and library imports left out).
IN_PROCESS = """
import sys, time
sys.path.insert(0, ".")
import project, project.core.runner.migrator, sqlalchemy, alembic.op
from project.core.conf import load_settings
from sqlalchemy.engine import make_url
settings = load_settings()
make_url(project.core.db.migration_url(settings)).get_dialect().import_dbapi()  # the app has its driver
start = time.perf_counter()
project.migrate_database(settings)
open(sys.argv[1], "w").write(str(time.perf_counter() - start))
"""


def dump(db: Database, out: Path) -> Path:
    """The engine's own dump of `db` (at head): schema, rows and alembic_version."""
    if db.server is None:
        out.write_text(sh(["sqlite3", str(db.path), ".dump"]).stdout)
        return out
    s = db.server
    if db.engine == "postgresql":
        argv = ["pg_dump", "--no-owner", "--no-privileges", "-h", s.host, "-p", str(s.port), "-U", s.user, db.name]
        env = {**os.environ, "PGPASSWORD": s.password}
    else:
        argv = ["mariadb-dump", "--no-defaults", "--skip-comments", "-h", s.host, "-P", str(s.port), "-u", s.user,
                db.name]
        env = {**os.environ, "MYSQL_PWD": s.password}
    out.write_text(subprocess.run(argv, env=env, check=True, capture_output=True, text=True).stdout)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=300, help="Generated revisions (default 300).")
    p.add_argument("--engines", default=",".join(run.ENGINES))
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeat", type=int, default=2, help="How many times the whole table is measured (default 2).")
    p.add_argument("--no-write", action="store_true", help="Print the table; leave bench/ untouched.")
    args = p.parse_args(argv)
    args.engines = [e for e in run.ENGINES if e in args.engines.split(",")]
    args.no_profiles = True
    started = time.perf_counter()
    results: dict[str, Any] = {"n": args.n, "runs": args.runs, "repeat": args.repeat, "loadavg_start": os.getloadavg(),
                               "engines": {}}
    with tempfile.TemporaryDirectory(prefix="bench-squash-") as tmp:
        work = Path(tmp)
        work.chmod(0o711)
        bench = Bench(args, work)
        try:
            bench.start_servers()
            tree = bench.tree(args.n)
            squashed = work / "tree_squashed"
            shutil.copytree(tree, squashed, symlinks=True)
            t0 = time.perf_counter()
            sh([run.PY, str(squashed / "manage.py"), "squashmigrations", "0001", f"b{args.n:04d}"], cwd=squashed,
               env=bench.env())
            results["squash_seconds"] = round(time.perf_counter() - t0, 2)
            for engine in args.engines:
                run.log(f"squashed migrate N={args.n} on {engine}")
                db = bench.db(engine, args.n, "_sq")
                env = bench.env(db)
                db.reset()
                history_sql, source = bench.floor_sql(db, args.n, "up")
                db.reset()
                sh([run.PY, str(squashed / "manage.py"), "migrate", "-v", "0"], cwd=squashed, env=env)
                end_sql = dump(db, work / f"dump_{engine}.sql")
                tables = []
                for _ in range(args.repeat):
                    rows = [Row("migrate (squashed)", [run.PY, str(squashed / "manage.py"), "migrate", "-v", "0"],
                                squashed, env, setup=db.reset),
                            Row("migrate (originals)", [run.PY, str(tree / "manage.py"), "migrate", "-v", "0"],
                                tree, env, setup=db.reset)]
                    timer = work / "in_process_seconds"
                    rows.append(Row("migrate (squashed, in-process)", [run.PY, "-c", IN_PROCESS, str(timer)], squashed,
                                    env, setup=db.reset, timer_file=timer))
                    for label, sql in (("history SQL", history_sql), ("end-state dump", end_sql)):
                        client, extra, stdin = db.client(sql)
                        rows.append(Row(f"floor: {label}", client, tree, {**env, **extra}, setup=db.reset, stdin=stdin))
                    stats = measure(rows, args.runs, args.warmup)
                    tables.append({"rows": stats, "ratios": {
                        "squashed/history floor": ratio(stats["migrate (squashed)"], stats["floor: history SQL"]),
                        "squashed/end-state dump": ratio(stats["migrate (squashed)"], stats["floor: end-state dump"]),
                        "in-process/history floor": ratio(stats["migrate (squashed, in-process)"],
                                                          stats["floor: history SQL"]),
                        "originals/history floor": ratio(stats["migrate (originals)"], stats["floor: history SQL"]),
                        "squashed/originals": ratio(stats["migrate (squashed)"], stats["migrate (originals)"]),
                    }})
                results["engines"][engine] = {"floor_source": source, "tables": tables}
                db.reset()
        finally:
            bench.stop_servers()
    results["loadavg_end"] = os.getloadavg()
    results["seconds"] = round(time.perf_counter() - started, 1)
    text = render(results)
    print(text)
    if not args.no_write:
        (BENCH / "squash_results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
        write_section(BENCH / "RESULTS.md", text)
    return 0


def render(results: dict[str, Any]) -> str:
    n = results["n"]
    lines = [BEGIN, f"## Squashed history: fresh `migrate` of {n} + 8 revisions squashed to one (bench/squash.py)", "",
             f"`manage.py squashmigrations 0001 b{n:04d}` took {results['squash_seconds']} s. Median of "
             f"{results['runs']} runs per row, rows interleaved; the whole table measured {results['repeat']} times "
             f"(load average {results['loadavg_start'][0]:.1f} at start, {results['loadavg_end'][0]:.1f} at end). "
             "Goal: squashed / floor <= 1.3.", "",
             "| engine | table | migrate squashed (s) | migrate originals (s) | squashed, in-process (s) | "
             "floor: history SQL (s) | floor: end-state dump (s) | squashed / history floor | squashed / dump floor | "
             "in-process / history floor | originals / history floor |", "|---" * 11 + "|"]
    for engine, data in results["engines"].items():
        for i, table in enumerate(data["tables"], 1):
            s, r = table["rows"], table["ratios"]
            lines.append(
                f"| {engine} | {i} | {s['migrate (squashed)']['median']:.3f} | {s['migrate (originals)']['median']:.3f}"
                f" | {s['migrate (squashed, in-process)']['median']:.3f}"
                f" | {s['floor: history SQL']['median']:.3f} | {s['floor: end-state dump']['median']:.3f} | "
                f"{r['squashed/history floor']:.2f} | {r['squashed/end-state dump']:.2f} | "
                f"{r['in-process/history floor']:.2f} | {r['originals/history floor']:.2f} |")
    lines += ["", "History SQL floor sources: " + "; ".join(f"{e}: {d['floor_source']}"
                                                          for e, d in results["engines"].items()), END]
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    text = path.read_text() if path.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section.rstrip("\n") + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
