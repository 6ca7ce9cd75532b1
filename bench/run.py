#!/usr/bin/env python
"""The benchmark suite: manage.py next to plain Alembic, the raw-SQL floor and Django, in one run.

    .venv/bin/python bench/run.py                      # full run (make bench): N = 50, 300, 1000
    .venv/bin/python bench/run.py --sizes 3 --runs 1 --warmup 0 --out /tmp/b   # smoke run

Starts the same throwaway PostgreSQL and MariaDB servers as the tests (scripts/dbservers.py),
generates histories into a temp directory (bench/histories.py), times every row as subprocesses
(median/min/max after warm-up; peak RSS from wait4), and writes results.json and RESULTS.md into
--out (default bench/). Only ratios measured in the same run compare: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import pstats
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(BENCH))

import histories  # noqa: E402

PY = sys.executable
ALEMBIC = str(Path(sys.executable).parent / "alembic")
ENGINES = ("sqlite", "mysql", "postgresql")
HEAVY = ("sqlalchemy", "alembic", "fastapi", "uvicorn", "starlette", "pydantic")
MISSING = "not measured: feature missing"
# The environment whose settings each engine runs under in the safety section, and its URL variable.
SAFETY_SETTINGS = {"sqlite": ("dev", "DEV_DATABASE_URL"), "mysql": ("test", "TEST_DATABASE_URL"),
                   "postgresql": ("prod", "PROD_DATABASE_URL")}
# (sync driver, async driver) pairs per engine for the drivers section; the first pair also gets the load test.
DRIVER_PAIRS = {
    "sqlite": [("sqlite+pysqlite", "sqlite+aiosqlite")],
    "mysql": [("mysql+pymysql", "mysql+asyncmy"), ("mysql+pymysql", "mysql+aiomysql")],
    "postgresql": [("postgresql+psycopg2", "postgresql+asyncpg"), ("postgresql+psycopg", "postgresql+psycopg_async")],
}


def with_driver(url: str, driver: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername=driver).render_as_string(hide_password=False)


# --- timing ------------------------------------------------------------------------------------


@dataclass
class Row:
    """One command to time. `setup` runs untimed before every run (e.g. an empty database)."""

    name: str
    cmd: list[str]
    cwd: Path
    env: dict[str, str]
    setup: Callable[[], None] | None = None
    stdin: Path | None = None
    rss: bool = False  # measure peak RSS (through /usr/bin/time, which adds ~1 ms)
    timer_file: Path | None = None  # the command times itself and writes the seconds here (in-process rows)
    times: list[float] = field(default_factory=list)
    rss_kb: list[int] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # user + sys seconds of the process (and its children)

    def stats(self) -> dict[str, Any]:
        if not self.times:
            return {"name": self.name, "runs": 0}
        return {
            "name": self.name,
            "cmd": " ".join(Path(self.cmd[0]).name if i == 0 else a for i, a in enumerate(self.cmd)),
            "runs": len(self.times),
            "median": statistics.median(self.times),
            "min": min(self.times),
            "max": max(self.times),
            "rss_mb": max(self.rss_kb) / 1024 if self.rss_kb else None,
            "cpu_median": statistics.median(self.cpu) if self.cpu else None,
        }


def children_cpu() -> float:
    """User + system CPU seconds of every child process waited for so far (what os.wait4 reports, summed)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(row: Row) -> tuple[float, int | None, float]:
    """Wall time, peak RSS (KB, when row.rss) and CPU time (user + sys, s) of one run; raises with the tail of
    stderr if it fails.

    RSS comes from /usr/bin/time, not from our own wait4: a child forked from this (big) process
    reports the parent's pages as its peak until it execs.
    """
    rss_file = Path(tempfile.mktemp(prefix="rss-")) if row.rss else None
    cmd = ["/usr/bin/time", "-f", "%M", "-o", str(rss_file), *row.cmd] if rss_file else row.cmd
    with tempfile.TemporaryFile() as err, (row.stdin.open("rb") if row.stdin else open(os.devnull, "rb")) as stdin:
        cpu_before = children_cpu()
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=row.cwd, env=row.env, stdin=stdin, stdout=subprocess.DEVNULL, stderr=err)
        elapsed = time.perf_counter() - start
        cpu = children_cpu() - cpu_before
        if proc.returncode != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{row.name}: {' '.join(row.cmd)} exited {proc.returncode}:\n{tail}")
    if row.timer_file is not None:  # the part the command timed itself (its start-up left out)
        elapsed = float(row.timer_file.read_text())
        row.timer_file.unlink()
    rss = None
    if rss_file:
        rss = int(rss_file.read_text().split()[-1])
        rss_file.unlink()
    return elapsed, rss, cpu


def measure(rows: list[Row], runs: int, warmup: int) -> dict[str, dict[str, Any]]:
    """Time the rows interleaved (row 1, row 2, ..., then again), so drift in load hits all alike."""
    for i in range(warmup + runs):
        for row in rows:
            if row.setup:
                row.setup()
            elapsed, rss, cpu = run_once(row)
            if i >= warmup:
                row.times.append(elapsed)
                row.cpu.append(cpu)
                if rss is not None:
                    row.rss_kb.append(rss)
    return {row.name: row.stats() for row in rows}


def forget_revision_map(tree: Path) -> None:
    """Delete the tree's cached revision map (project.core.history.scripts): the next migrate imports every
    version file to build it again, as a first migrate in a fresh checkout or container does."""
    (tree / ".cache" / "revision-map.json").unlink(missing_ok=True)


def ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> float | None:
    if not a or not b or not a.get("runs") or not b.get("runs"):
        return None
    return a["median"] / b["median"]


def cpu_ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> float | None:
    if not a or not b or not a.get("cpu_median") or not b.get("cpu_median"):
        return None
    return a["cpu_median"] / b["cpu_median"]


def fmt_load(load: Any) -> str:
    return "/".join(f"{x:.1f}" for x in load)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None, stdin: Path | None = None,
       check: bool = True) -> subprocess.CompletedProcess[str]:
    with (stdin.open("rb") if stdin else open(os.devnull, "rb")) as inp:
        res = subprocess.run(cmd, cwd=cwd, env=env, stdin=inp, capture_output=True)
    out = subprocess.CompletedProcess(cmd, res.returncode, res.stdout.decode(errors="replace"),
                                      res.stderr.decode(errors="replace"))
    if check and out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {out.returncode}:\n{out.stderr[-2000:]}{out.stdout[-500:]}")
    return out


# Where a migrate's time goes, from a cProfile run: (label, how to find it). "ct" sums the cumulative
# time of matching functions (outermost calls only, as cProfile counts recursion), "tt" their own time.
BREAKDOWN = (
    ("imports (modules, not version files)", "ct", lambda f, ln, fn: fn == "_find_and_load"),
    ("load_python_file (version files + env.py)", "ct",
     lambda f, ln, fn: fn == "load_module_py" and f.endswith("pyfiles.py")),
    ("env.py (runs the migrations)", "ct", lambda f, ln, fn: f.endswith("env.py") and fn == "<module>"),
    ("database round trips (DBAPI execute/commit)", "ct",
     lambda f, ln, fn: f.endswith("engine/default.py") and fn in {"do_execute", "do_executemany",
                                                                   "do_execute_no_params", "do_commit"}),
    ("reflecting tables (SQLite batch mode)", "ct",
     lambda f, ln, fn: f.endswith("engine/reflection.py") and fn == "reflect_table"),
    ("batch_alter_table blocks (SQLite: reflect + rebuild + copy)", "ct",
     lambda f, ln, fn: f.endswith("operations/batch.py") and fn == "flush"),
    ("alembic_version updates (incl. their round trips)", "ct",
     lambda f, ln, fn: f.endswith("runtime/migration.py") and fn == "update_to_step"),
    ("running revisions (upgrade()/downgrade() bodies)", "ct",
     lambda f, ln, fn: "/versions/" in f and fn in {"upgrade", "downgrade"}),
)


def breakdown(stats: pstats.Stats) -> dict[str, float]:
    raw = stats.stats  # type: ignore[attr-defined]
    out = {"total (under the profiler)": stats.total_tt}  # type: ignore[attr-defined]
    for label, kind, match in BREAKDOWN:
        out[label] = sum((ct if kind == "ct" else tt) for (f, ln, fn), (_cc, _nc, tt, ct, _callers) in raw.items()
                         if match(f, ln, fn))
    files = out.pop("load_python_file (version files + env.py)") - out["env.py (runs the migrations)"]
    out["reading version files (exec of each file, excl. env.py)"] = files
    out["other Python (total - imports - version files - database)"] = (
        out["total (under the profiler)"] - out["imports (modules, not version files)"] - files
        - out["database round trips (DBAPI execute/commit)"])
    return out


# --- databases ---------------------------------------------------------------------------------


class Database:
    """One database on one engine, that the bench empties between runs."""

    def __init__(self, engine: str, name: str, server: Any, work: Path):
        self.engine, self.name, self.server = engine, name, server
        self.path = work / f"{name}.sqlite3"

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}" if self.server is None else self.server.url(self.name)

    def reset(self) -> None:
        if self.server is None:
            self.path.unlink(missing_ok=True)
        else:
            self.server.create_database(self.name)  # drops the old one first

    def client(self, sql_file: Path) -> tuple[list[str], dict[str, str], Path | None]:
        """The engine's own client applying `sql_file`: (argv, extra env, stdin)."""
        if self.server is None:
            return ["sqlite3", str(self.path)], {}, sql_file
        s = self.server
        if self.engine == "postgresql":
            argv = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", s.host, "-p", str(s.port), "-U", s.user,
                    "-d", self.name, "-f", str(sql_file)]
            return argv, {"PGPASSWORD": s.password}, None
        argv = ["mariadb", "--no-defaults", "-h", s.host, "-P", str(s.port), "-u", s.user, self.name]
        return argv, {"MYSQL_PWD": s.password}, sql_file


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path):
        self.args = args
        self.work = work
        self.servers: dict[str, Any] = {}
        self.trees: dict[int, Path] = {}
        self.results: dict[str, Any] = {"sections": {}, "targets": [], "profiles": {}, "notes": []}
        self.section: str | None = None  # the section running now (its targets are tagged with it)

    # -- set-up ---------------------------------------------------------------------------------
    def start_servers(self) -> None:
        import dbservers

        base = self.work / "servers"
        base.mkdir()
        base.chmod(0o711)  # the postgres OS user must reach its directory inside
        if "postgresql" in self.args.engines:
            self.servers["postgresql"] = dbservers.start_postgres(base)
        if "mysql" in self.args.engines:
            self.servers["mysql"] = dbservers.start_mariadb(base)

    def stop_servers(self) -> None:
        for server in self.servers.values():
            server.stop()

    def tree(self, n: int) -> Path:
        if n not in self.trees:
            self.trees[n] = histories.make_tree(self.work / f"tree_{n}", n)
        return self.trees[n]

    def db(self, engine: str, n: int, tag: str = "") -> Database:
        return Database(engine, f"bench_n{n}{tag}", self.servers.get(engine), self.work)

    def env(self, db: Database | None = None, **extra: str) -> dict[str, str]:
        env = {**os.environ, "SETTINGS_MODULE": "dev", "NO_COLOR": "1", "MIGRATE_ON_STARTUP": "0", **extra}
        env.pop("CI", None)
        # Bytecode caching on, as on a developer's machine or in a deploy image (some sandboxes turn it off):
        # the warm-up run leaves every version file compiled, for our CLI and for the peers alike.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        if db is not None and "DEV_DATABASE_URL" not in extra:  # a URL with another driver wins over db's
            env["DEV_DATABASE_URL"] = db.url
        return env

    def manage(self, n: int, *args: str) -> list[str]:
        return [PY, str(self.tree(n) / "manage.py"), *args]

    def ensure_head(self, db: Database, n: int) -> None:
        """Bring `db` to the head of the N tree (from scratch) unless it is there already."""
        tree, env = self.tree(n), self.env(db)
        current = sh([ALEMBIC, "current"], cwd=tree, env=env, check=False)
        if current.returncode != 0 or current.stdout.strip().split(" ")[0] != histories.revision_id(n):
            db.reset()
            sh([ALEMBIC, "upgrade", "head"], cwd=tree, env=env)

    def has_command(self, n: int, name: str) -> bool:
        return (self.tree(n) / "project" / "core" / "management" / "commands" / f"{name}.py").exists()

    def target(self, name: str, value: float | None, limit: float, *, lower_is_better: bool = True,
               note: str = "", profile: str | None = None) -> None:
        met = None if value is None else (value <= limit if lower_is_better else value >= limit)
        self.results["targets"].append({"target": name, "value": value, "limit": limit, "met": met,
                                        "note": note or (MISSING if value is None else ""), "profile": profile,
                                        "section": self.section})

    def run_section(self, name: str, func: Callable[[], Any]) -> None:
        log(f"section {name}")
        started = time.perf_counter()
        load_start = os.getloadavg()
        self.section = name
        try:
            self.results["sections"][name] = func()
        except Exception as exc:  # one broken section must not lose the others' numbers
            log(f"section {name} FAILED: {exc}")
            self.results["sections"][name] = {"error": str(exc)[-3000:]}
        self.results["sections"].setdefault(name, {})
        if isinstance(self.results["sections"][name], dict):
            self.results["sections"][name]["seconds"] = round(time.perf_counter() - started, 1)
            self.results["sections"][name]["run"] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                                     "loadavg": [load_start, os.getloadavg()]}
        self.section = None

    # -- profiles -------------------------------------------------------------------------------
    def profile(self, key: str, cmd: list[str], cwd: Path, env: dict[str, str],
                setup: Callable[[], None] | None = None, top: int = 40) -> str | None:
        """Profile `cmd` (a python script + args) with cProfile: where the time goes, and the top functions."""
        if self.args.no_profiles:
            return None
        if setup:
            setup()
        out = self.work / f"{key}.prof"
        sh([PY, "-m", "cProfile", "-o", str(out), *cmd], cwd=cwd, env=env)
        stream = io.StringIO()
        stats = pstats.Stats(str(out), stream=stream)
        stats.sort_stats("cumulative").print_stats(top)
        text = stream.getvalue()
        self.results["profiles"][key] = {
            "cmd": " ".join(Path(c).name if i == 0 else c for i, c in enumerate(cmd)),
            "total": stats.total_tt,  # type: ignore[attr-defined]
            "breakdown": breakdown(stats),
            "top": text[text.find("ncalls"):].rstrip() if "ncalls" in text else text,
        }
        return key

    # -- sections -------------------------------------------------------------------------------
    def section_startup(self) -> dict[str, Any]:
        """manage.py help and CMD --help next to alembic heads and Django's manage.py help."""
        n = self.args.sizes[0]
        tree = self.tree(n)
        env = self.env()
        rows = [
            Row("python -c pass (interpreter)", [PY, "-c", "pass"], tree, env),
            Row("manage.py help", self.manage(n, "help"), tree, env),
            Row("manage.py migrate --help", self.manage(n, "migrate", "--help"), tree, env),
            Row("manage.py showmigrations --help", self.manage(n, "showmigrations", "--help"), tree, env),
            Row("alembic heads", [ALEMBIC, "heads"], tree, env),
        ]
        django = self.django_tree(n)
        if django:
            rows.append(Row("django manage.py help", [PY, "manage.py", "help"], django, env))
        stats = measure(rows, self.args.runs, self.args.warmup)
        imports = {}
        for args in (("help",), ("migrate", "--help"), ("showmigrations", "--help"), ("sqlmigrate", "--help")):
            res = sh([PY, "-X", "importtime", *self.manage(n, *args)[1:]], cwd=tree, env=env)
            mods = {line.split("|")[-1].strip() for line in res.stderr.splitlines() if line.startswith("import time")}
            imports[" ".join(args)] = sorted(m for m in mods if m.split(".")[0] in HEAVY)
        help_ratio = ratio(stats["manage.py help"], stats["alembic heads"])
        cmd_help_ratio = ratio(stats["manage.py migrate --help"], stats["alembic heads"])
        self.target(f"`manage.py help` / `alembic heads` (N={n})", help_ratio, 0.3)
        self.target(f"`manage.py migrate --help` / `alembic heads` (N={n})", cmd_help_ratio, 0.3)
        if django:
            self.target("`manage.py help` / Django `manage.py help`", ratio(stats["manage.py help"],
                        stats["django manage.py help"]), 1.0, note="must be faster (< 1.0)")
        else:
            self.target("`manage.py help` / Django `manage.py help`", None, 1.0, note="not measured: Django missing "
                        "(pip install -e '.[bench]')")
        heavy = sorted({m for mods in imports.values() for m in mods})
        self.target("heavy modules imported by `help` and `CMD --help`", float(len(heavy)), 0,
                    note=", ".join(heavy) if heavy else "none of " + ", ".join(HEAVY))
        return {"size": n, "rows": stats, "heavy_imports": imports,
                "ratios": {"help/alembic heads": help_ratio, "migrate --help/alembic heads": cmd_help_ratio}}

    def django_tree(self, n: int) -> Path | None:
        try:
            import django  # noqa: F401
        except ImportError:
            return None
        dest = self.work / f"django_{n}"
        if not dest.exists():
            histories.make_django_tree(dest, n)
        return dest

    def floor_sql(self, db: Database, n: int, direction: str) -> tuple[Path, str]:
        """The SQL file that takes `db` empty -> head (up) or head -> empty (down), and where it came from."""
        tree = self.tree(n)
        out = self.work / f"floor_{db.engine}_n{n}_{direction}.sql"
        if db.engine != "sqlite":
            rng = "base:head" if direction == "up" else "head:base"
            res = sh([ALEMBIC, "upgrade" if direction == "up" else "downgrade", rng, "--sql"], cwd=tree,
                     env=self.env(db))
            out.write_text(res.stdout)
            return out, "alembic --sql (offline)"
        # SQLite: Alembic's --sql cannot rebuild tables offline; `manage.py sqlmigrate` can (project/offline.py).
        rng = "base:head" if direction == "up" else "head:base"
        res = sh(self.manage(n, "sqlmigrate", rng, "--dialect", "sqlite"), cwd=tree, env=self.env(), check=False)
        if res.returncode == 0:
            out.write_text(res.stdout)
            scratch = Database("sqlite", f"verify_n{n}", None, self.work)
            if direction == "up":
                scratch.reset()
            applied = sh(["sqlite3", "-bail", str(scratch.path)], stdin=out, check=False)
            if applied.returncode == 0:
                return out, "`manage.py sqlmigrate " + rng + " --dialect sqlite` (offline)"
            self.results["notes"].append(f"sqlmigrate {rng} for SQLite did not apply: {applied.stderr[-300:]}")
        # Without it, replay what SQLite really ran.
        scratch = Database("sqlite", f"capture_n{n}", None, self.work)
        scratch.reset()
        if direction == "down":
            sh(self.manage(n, "migrate", "-v", "0"), cwd=tree, env=self.env(scratch))
        res = sh([PY, str(BENCH / "capture_sqlite.py"), str(scratch.path), direction, str(out)], cwd=tree,
                 env=self.env(scratch))
        seen, kept = res.stdout.split()
        return out, f"statements captured online ({kept} of {seen} executed; reads dropped)"

    def section_migrate(self) -> dict[str, Any]:
        """migrate / migrate zero at the middle size vs plain alembic and the raw-SQL floor, per engine."""
        n = self.args.sizes[len(self.args.sizes) // 2]
        tree = self.tree(n)
        out: dict[str, Any] = {"size": n, "engines": {}}
        for engine in self.args.engines:
            log(f"  migrate N={n} on {engine}")
            db = self.db(engine, n)
            env = self.env(db)
            db.reset()
            up_sql, up_source = self.floor_sql(db, n, "up")
            down_sql, down_source = self.floor_sql(db, n, "down")
            rows = [
                Row("manage.py migrate", self.manage(n, "migrate"), tree, env, setup=db.reset),
                Row("manage.py migrate zero", self.manage(n, "migrate", "zero"), tree, env),
                Row("alembic upgrade head", [ALEMBIC, "upgrade", "head"], tree, env, setup=db.reset),
                Row("alembic downgrade base", [ALEMBIC, "downgrade", "base"], tree, env),
            ]
            for label, sql in (("up", up_sql), ("down", down_sql)):
                argv, extra, stdin = db.client(sql)
                rows.append(Row(f"raw SQL floor {label} ({Path(argv[0]).name})", argv, tree, {**env, **extra},
                                setup=db.reset if label == "up" else None, stdin=stdin))
            runs = self.args.migrate_runs or self.args.runs
            stats = measure(rows, runs, self.args.warmup)
            floor_up, floor_down = stats[rows[4].name], stats[rows[5].name]
            r = {
                "migrate/alembic upgrade": ratio(stats["manage.py migrate"], stats["alembic upgrade head"]),
                "migrate zero/alembic downgrade": ratio(stats["manage.py migrate zero"],
                                                        stats["alembic downgrade base"]),
                "alembic upgrade/floor": ratio(stats["alembic upgrade head"], floor_up),
                "migrate/floor": ratio(stats["manage.py migrate"], floor_up),
                "alembic downgrade/floor": ratio(stats["alembic downgrade base"], floor_down),
                "migrate zero/floor": ratio(stats["manage.py migrate zero"], floor_down),
            }
            out["engines"][engine] = {"rows": stats, "ratios": r, "floor_source": {"up": up_source,
                                                                                   "down": down_source}}
            floor_limit = 3.0 if engine == "sqlite" else 2.0
            self.target(f"{engine}: `migrate` / `alembic upgrade head` (N={n})", r["migrate/alembic upgrade"], 1.05)
            self.target(f"{engine}: `migrate zero` / `alembic downgrade base` (N={n})",
                        r["migrate zero/alembic downgrade"], 1.05)
            for key, cmd, setup in (("migrate/floor", ["migrate"], db.reset),
                                    ("migrate zero/floor", ["migrate", "zero"], None)):
                prof = None
                if r[key] is not None and r[key] > floor_limit:
                    if setup is None:  # migrate zero needs the database at head
                        def setup(db: Database = db, env: dict[str, str] = env) -> None:
                            db.reset()
                            sh(self.manage(n, "migrate", "-v", "0"), cwd=tree, env=env)
                    prof = self.profile(f"{engine}_{key.split('/')[0].replace(' ', '_')}_n{n}",
                                        self.manage(n, *cmd, "-v", "0")[1:], tree, env, setup=setup)
                self.target(f"{engine}: `{key.split('/')[0]}` / raw-SQL floor (N={n})", r[key], floor_limit,
                            profile=prof)
            db.reset()
        return out

    def section_memory(self) -> dict[str, Any]:
        """Peak RSS (and time) of migrate empty -> head at the largest size; leaves each database at head."""
        n = self.args.sizes[-1]
        tree = self.tree(n)
        out: dict[str, Any] = {"size": n, "engines": {}}
        for engine in self.args.engines:
            log(f"  memory N={n} on {engine}")
            db = self.db(engine, n)
            env = self.env(db)
            db.reset()
            up_sql, _source = self.floor_sql(db, n, "up")  # how the floor ratio moves once start-up amortizes
            argv, extra, stdin = db.client(up_sql)
            rows = [
                Row("alembic upgrade head", [ALEMBIC, "upgrade", "head"], tree, env, setup=db.reset, rss=True),
                Row("manage.py migrate", self.manage(n, "migrate"), tree, env, setup=db.reset, rss=True),
                Row(f"raw SQL floor up ({Path(argv[0]).name})", argv, tree, {**env, **extra}, setup=db.reset,
                    stdin=stdin, rss=True),
            ]
            stats = measure(rows, self.args.memory_runs, 0)
            rss = (stats["manage.py migrate"]["rss_mb"] / stats["alembic upgrade head"]["rss_mb"]
                   if stats["manage.py migrate"].get("rss_mb") else None)
            out["engines"][engine] = {"rows": stats, "ratios": {
                "migrate/alembic RSS": rss,
                "migrate/alembic time": ratio(stats["manage.py migrate"], stats["alembic upgrade head"]),
                "migrate/floor time": ratio(stats["manage.py migrate"], stats[rows[2].name]),
                "alembic/floor time": ratio(stats["alembic upgrade head"], stats[rows[2].name])}}
            self.target(f"{engine}: peak RSS of `migrate` / `alembic upgrade head` (N={n})", rss, 1.2)
        return out

    AT_HEAD = {  # row name -> manage.py arguments
        "manage.py migrate (at head)": ["migrate"],
        "manage.py showmigrations": ["showmigrations"],
        "manage.py migrate --plan": ["migrate", "--plan"],
        "manage.py check": ["check"],
    }

    def section_at_head(self) -> dict[str, Any]:
        """Commands on a database at head, N = each size: they should cost one `alembic current`."""
        out: dict[str, Any] = {"engines": {}}
        has_check = self.has_command(self.args.sizes[0], "check")
        largest = self.args.sizes[-1]
        for engine in self.args.engines:
            out["engines"][engine] = {}
            for n in self.args.sizes:
                log(f"  at head N={n} on {engine}")
                tree = self.tree(n)
                db = self.db(engine, n)
                env = self.env(db)
                self.ensure_head(db, n)
                rows = [Row("alembic current", [ALEMBIC, "current"], tree, env)]
                rows += [Row(name, self.manage(n, *args), tree, env) for name, args in self.AT_HEAD.items()
                         if has_check or args != ["check"]]
                django = self.django_tree(n) if engine == "sqlite" else None
                if django:
                    rows.append(Row("django manage.py showmigrations", [PY, "manage.py", "showmigrations"], django,
                                    {**env, "DJANGO_DB_PATH": str(self.work / f"django_{n}.sqlite3")}))
                stats = measure(rows, self.args.runs, self.args.warmup)
                out["engines"][engine][str(n)] = {"rows": stats, "ratios": {
                    name: ratio(stats[name], stats["alembic current"]) for name in stats if name != "alembic current"}}
            ratios = out["engines"][engine][str(largest)]["ratios"]
            for name, args in self.AT_HEAD.items():
                value = ratios.get(name)
                prof = None
                if value is not None and value > 1.0:
                    tree = self.tree(largest)
                    prof = self.profile(f"{engine}_{'_'.join(a.strip('-') for a in args)}_n{largest}",
                                        [str(tree / "manage.py"), *args], tree, self.env(self.db(engine, largest)))
                note = MISSING + " (no check command)" if value is None and args == ["check"] else ""
                self.target(f"{engine}: `{name.removeprefix('manage.py ')}` / `alembic current` (N={largest})",
                            value, 1.0, note=note, profile=prof)
        out["growth"] = self._growth(out)
        out["version_file_loads"] = self._count_loads()
        return out

    def _growth(self, out: dict[str, Any]) -> dict[str, Any]:
        """time(N largest) / time(N smallest) per command and engine, next to the ratio of the sizes."""
        lo, hi = str(self.args.sizes[0]), str(self.args.sizes[-1])
        growth: dict[str, Any] = {"sizes": f"{lo} -> {hi}", "size_ratio": int(hi) / int(lo),
                                  "pairs": [f"{a}->{b}" for a, b in pairwise(self.args.sizes)]}
        growth["ms_per_revision"] = {}
        for engine, by_size in out["engines"].items():
            names = [name for name in by_size[hi]["rows"] if name in by_size[lo]["rows"]]
            growth[engine] = {name: by_size[hi]["rows"][name]["median"] / by_size[lo]["rows"][name]["median"]
                              for name in names}
            # The marginal cost of one more revision in the history: linear growth shows as a constant here.
            # Between consecutive sizes: linear growth keeps it flat from one pair to the next.
            sizes = [str(n) for n in self.args.sizes]
            growth["ms_per_revision"][engine] = {
                name: [1000 * (by_size[b]["rows"][name]["median"] - by_size[a]["rows"][name]["median"])
                       / max(1, int(b) - int(a)) for a, b in pairwise(sizes)] for name in names}
        return growth

    def safety_env(self, db: Database, **extra: str) -> dict[str, str]:
        """The environment of `db`'s engine with that environment's default settings (settings/dev.py for
        SQLite, test.py for MariaDB, prod.py for PostgreSQL): no inherited override of a safety setting."""
        module, url_var = SAFETY_SETTINGS[db.engine]
        env = {k: v for k, v in os.environ.items()
               if k not in {"CI", "PYTHONDONTWRITEBYTECODE", "CONFIRM_DESTRUCTIVE", "CHECKSUM_MISMATCH", "DEBUG"}
               and not k.startswith("MIGRATE_") and not k.endswith("DATABASE_URL")}
        return {**env, "SETTINGS_MODULE": module, url_var: db.url, "NO_COLOR": "1", "MIGRATE_ON_STARTUP": "0",
                **extra}

    def baseline_tree(self, n: int) -> Path | None:
        """The N tree built from --baseline (the code before a change), with the same generated history."""
        if self.args.baseline is None:
            return None
        dest = self.work / f"before_{n}"
        if not dest.exists():
            histories.make_tree(dest, n, source=self.args.baseline)
        return dest

    def section_safety(self) -> dict[str, Any]:
        """`manage.py migrate --settings=ENV` against `alembic upgrade head` on an empty database, each engine with
        its environment's default safety settings; CPU (user + sys of the child) next to wall time; the same
        migrate with one safety feature switched off at a time (bench/safety_off.py), and the code of
        --baseline, in the same interleaved runs. Then migrate at head against `alembic current`."""
        out: dict[str, Any] = {"sizes": self.args.safety_sizes, "engines": {}}
        off = [PY, str(BENCH / "safety_off.py")]
        for n in self.args.safety_sizes:  # every tree copied now: the code compared is the code at the start
            self.tree(n)
            self.baseline_tree(n)
        for engine in self.args.engines:
            module = SAFETY_SETTINGS[engine][0]
            out["engines"][engine] = {"settings": module}
            for n, runs in zip(self.args.safety_sizes, self.args.safety_runs, strict=True):
                log(f"  safety N={n} on {engine} ({module} settings), load {fmt_load(os.getloadavg())}")
                tree = self.tree(n)
                manage = str(tree / "manage.py")
                db = self.db(engine, n, "_safety")
                env = self.safety_env(db)
                migrate = ["migrate", f"--settings={module}"]
                rows = [Row("alembic upgrade head", [ALEMBIC, "upgrade", "head"], tree, env, setup=db.reset),
                        Row("manage.py migrate", [PY, manage, *migrate], tree, env, setup=db.reset),
                        # A deploy's first migrate in a new container: no .cache/revision-map.json yet.
                        Row("migrate, no revision-map cache", [PY, manage, *migrate], tree, env,
                            setup=lambda db=db, tree=tree: (db.reset(), forget_revision_map(tree)))]
                before = self.baseline_tree(n)
                if before is not None:
                    rows.append(Row("manage.py migrate (before)", [PY, str(before / "manage.py"), *migrate], before,
                                    env, setup=db.reset))
                if n in self.args.safety_feature_sizes:
                    if module == "prod":  # the one environment where it is on by default
                        rows.append(Row("migrate, CONFIRM_DESTRUCTIVE=0", [PY, manage, *migrate], tree,
                                        self.safety_env(db, CONFIRM_DESTRUCTIVE="0"), setup=db.reset))
                    for feature in ("checksums", "applied_log", "timeouts", "lock", "topology"):
                        rows.append(Row(f"migrate, {feature} off", [*off, feature, manage, *migrate], tree, env,
                                        setup=db.reset))
                    everything = "checksums,applied_log,timeouts,lock,topology"
                    rows.append(Row("migrate, all of them off", [*off, everything, manage, *migrate], tree,
                                    self.safety_env(db, CONFIRM_DESTRUCTIVE="0"), setup=db.reset))
                load_start = os.getloadavg()
                stats = measure(rows, runs, self.args.warmup)
                base = stats["alembic upgrade head"]
                ratios = {name: {"wall": ratio(r, base), "cpu": cpu_ratio(r, base)} for name, r in stats.items()
                          if name != "alembic upgrade head"}
                out["engines"][engine][str(n)] = {"rows": stats, "ratios": ratios,
                                                  "loadavg": [load_start, os.getloadavg()]}
                for kind in ("wall", "cpu"):
                    self.target(f"{engine} ({module} settings): `migrate` / `alembic upgrade head` (N={n}), {kind}",
                                ratios["manage.py migrate"][kind], 1.05,
                                note=f"load average {fmt_load(load_start)} at the start of these runs")
            # At head: nothing pending, with the same settings.
            n = self.args.safety_sizes[-1]
            tree = self.tree(n)
            db = self.db(engine, n, "_safety")
            env = self.safety_env(db)
            db.reset()
            sh([ALEMBIC, "upgrade", "head"], cwd=tree, env=env)
            rows = [Row("alembic current", [ALEMBIC, "current"], tree, env),
                    Row("manage.py migrate (at head)", [PY, str(tree / "manage.py"), "migrate", f"--settings={module}"],
                        tree, env),
                    Row("manage.py migrate (at head, no revision-map cache)",
                        [PY, str(tree / "manage.py"), "migrate", f"--settings={module}"], tree, env,
                        setup=lambda tree=tree: forget_revision_map(tree))]
            before = self.baseline_tree(n)
            if before is not None:
                rows.append(Row("manage.py migrate (at head, before)", [PY, str(before / "manage.py"), "migrate",
                                                                        f"--settings={module}"], before, env))
            stats = measure(rows, self.args.safety_runs[-1], self.args.warmup)
            value = ratio(stats["manage.py migrate (at head)"], stats["alembic current"])
            out["engines"][engine]["at_head"] = {"size": n, "rows": stats, "ratios": {
                name: ratio(r, stats["alembic current"]) for name, r in stats.items() if name != "alembic current"}}
            self.target(f"{engine} ({module} settings): `migrate` at head / `alembic current` (N={n})", value, 0.7)
            db.reset()
        return out

    def _count_loads(self) -> dict[str, Any]:
        """How often each version file is executed by one `manage.py migrate` (empty -> head) and by alembic."""
        n = self.args.sizes[0]
        tree = self.tree(n)
        db = self.db("sqlite", n, "_loads")
        counter = (
            "import collections, sys, atexit; sys.path.insert(0, '.'); import alembic.util as u; "
            "orig = u.load_python_file; seen = collections.Counter()\n"
            "def load(d, f):\n    seen[f] += 1\n    return orig(d, f)\n"
            "u.load_python_file = load\n"
            "atexit.register(lambda: sys.stderr.write('LOADS %d %d\\n' % (sum(v for k, v in seen.items() "
            "if k != 'env.py'), len([k for k in seen if k != 'env.py']))))\n"
        )
        result = {}
        for label, tail in (("manage.py migrate", "from project.core.management import execute_from_command_line; "
                                                  "execute_from_command_line(['manage.py', 'migrate', '-v', '0'])"),
                            ("alembic upgrade head", "from alembic.config import main; main(['upgrade', 'head'])")):
            db.reset()
            res = sh([PY, "-c", counter + tail], cwd=tree, env=self.env(db))
            m = re.search(r"LOADS (\d+) (\d+)", res.stderr)
            loads, files = (int(m.group(1)), int(m.group(2))) if m else (None, None)
            result[label] = {"loads": loads, "files": files, "per_file": loads / files if files else None}
        self.target(f"version-file loads per file in one `migrate` (N={n})",
                    result["manage.py migrate"]["per_file"], 1.0)
        return result

    def section_sqlmigrate(self) -> dict[str, Any]:
        """sqlmigrate of the last revision (a SQLite table rebuild) for SQLite vs PostgreSQL, no connection."""
        n = self.args.sizes[len(self.args.sizes) // 2]
        tree = self.tree(n)
        last = histories.revision_id(n)
        env = self.env()
        probe = sh(self.manage(n, "sqlmigrate", last, "--dialect", "sqlite"), cwd=tree, env=env, check=False)
        if probe.returncode != 0:
            reason = (probe.stderr.strip().splitlines() or ["?"])[-1]
            self.target(f"`sqlmigrate {last} --dialect sqlite` / `--dialect postgresql` (N={n})", None, 2.0,
                        note=f"{MISSING}: {reason}")
            return {"size": n, "revision": last, "status": MISSING, "reason": reason}
        rows = [
            Row("sqlmigrate --dialect postgresql", self.manage(n, "sqlmigrate", last, "--dialect", "postgresql"),
                tree, env),
            Row("sqlmigrate --dialect sqlite", self.manage(n, "sqlmigrate", last, "--dialect", "sqlite"), tree, env),
        ]
        stats = measure(rows, self.args.runs, self.args.warmup)
        value = ratio(stats["sqlmigrate --dialect sqlite"], stats["sqlmigrate --dialect postgresql"])
        prof = None
        if value is not None and value > 2.0:
            prof = self.profile(f"sqlmigrate_sqlite_n{n}", [str(tree / "manage.py"), "sqlmigrate", last, "--dialect",
                                                           "sqlite"], tree, env)
        self.target(f"`sqlmigrate {last} --dialect sqlite` / `--dialect postgresql` (N={n})", value, 2.0,
                    profile=prof)
        return {"size": n, "revision": last, "rows": stats, "ratio": value,
                "sqlite_sql_head": probe.stdout.strip().splitlines()[:12]}

    def section_rebuild(self) -> dict[str, Any]:
        """SQLite batch rebuild (alter_column type) of a big table vs the same rebuild by hand."""
        rows_n = self.args.big_rows
        base = self.work / "big_base.sqlite3"
        code = BENCH / "rebuild.py"
        sh([PY, str(code), "make", str(base), str(rows_n)])
        times: dict[str, list[float]] = {"alembic batch alter_column": [], "by hand": [],
                                         "alembic batch add_column": []}
        details: dict[str, Any] = {}
        for i in range(self.args.warmup + self.args.rebuild_runs):
            for kind in times:
                work = self.work / "big_work.sqlite3"
                shutil.copyfile(base, work)
                res = json.loads(sh([PY, str(code), kind.split()[-1] if kind != "by hand" else "hand", str(work)],
                                    cwd=ROOT).stdout)
                if i >= self.args.warmup:
                    times[kind].append(res["seconds"])
                details[kind] = res
                work.unlink()
        stats = {k: {"name": k, "runs": len(v), "median": statistics.median(v), "min": min(v), "max": max(v)}
                 for k, v in times.items()}
        value = ratio(stats["alembic batch alter_column"], stats["by hand"])
        self.target(f"SQLite batch rebuild of {rows_n:,} rows / by hand", value, 1.2)
        copies = details["alembic batch add_column"]["copies_table"]
        self.target("SQLite `add_column` (ALTER-able) copies the table", float(copies), 0,
                    note="; ".join(details["alembic batch add_column"]["statements"])[:300])
        return {"rows": rows_n, "stats": stats, "ratio": value,
                "statements": {k: v["statements"] for k, v in details.items()}}

    def section_health(self) -> dict[str, Any]:
        """/health vs /health/ready under load, on the largest tree, PostgreSQL when it is there."""
        n = self.args.sizes[-1]
        tree = self.tree(n)
        health = tree / "project" / "core" / "health.py"
        asgi = tree / "project" / "app" / "asgi.py"
        if not health.exists() or "/ready" not in health.read_text() or not asgi.exists():
            for t in ("p50", "p99"):
                self.target(f"`/health/ready` / `/health` {t} latency", None, 2.0)
            return {"status": MISSING}
        from loadtest import run_load

        engine = "postgresql" if "postgresql" in self.args.engines else self.args.engines[0]
        db = self.db(engine, n)
        env = self.env(db)
        self.ensure_head(db, n)
        result = asyncio.run(run_load(tree, env, db, self.args.load_requests, self.args.load_concurrency,
                                      self.args.load_rounds))
        for t in ("p50", "p99"):
            self.target(f"`/health/ready` / `/health` {t} latency ({engine}, N={n})", result["ratios"][t], 2.0)
        self.target("new database connections per `/health/ready` request", result["new_sessions_per_request"],
                    0.01, note="PostgreSQL pg_stat_database.sessions" if engine == "postgresql" else "not measured "
                    "on this engine")
        self.target("bytes read from disk per `/health/ready` request", result["read_bytes_per_request"], 1024,
                    note="/proc/PID/io rchar of the server (version files are ~1 KB each)")
        return {"size": n, "engine": engine, **result}

    def section_drivers(self) -> dict[str, Any]:
        """Each engine's async driver against its sync one: migrate at the middle size, then the API's CRUD
        latency under load (a sync URL serves routes on a Session in the threadpool, an async URL on an
        AsyncSession on the event loop)."""
        from loadtest import crud_load

        n = self.args.sizes[len(self.args.sizes) // 2]
        tree = self.tree(n)
        out: dict[str, Any] = {"size": n, "engines": {}}
        runs = self.args.migrate_runs or self.args.runs
        for engine in self.args.engines:
            db = self.db(engine, n, "_drivers")
            engine_out: dict[str, Any] = {}
            for sync, asynchronous in DRIVER_PAIRS[engine]:
                log(f"  migrate N={n}: {asynchronous} vs {sync}")
                rows = [Row(f"migrate ({driver})", self.manage(n, "migrate"), tree,
                            self.env(db, DEV_DATABASE_URL=with_driver(db.url, driver)), setup=db.reset)
                        for driver in (sync, asynchronous)]
                stats = measure(rows, runs, self.args.warmup)
                value = ratio(stats[rows[1].name], stats[rows[0].name])
                engine_out[f"{asynchronous}/{sync}"] = {"rows": stats, "ratio": value}
                self.target(f"{engine}: `migrate` {asynchronous} / {sync} (N={n})", value, 1.10)
            sync, asynchronous = DRIVER_PAIRS[engine][0]
            load: dict[str, Any] = {}
            for driver in (sync, asynchronous):
                log(f"  CRUD load on {driver}")
                db.reset()
                env = self.env(db, DEV_DATABASE_URL=with_driver(db.url, driver), MIGRATE_ON_STARTUP="1")
                load[driver] = asyncio.run(crud_load(ROOT, env, self.args.load_requests,
                                                     self.args.load_concurrency))
            engine_out["crud"] = load
            for t in ("p50", "p99"):
                self.target(f"{engine}: CRUD {t} latency {asynchronous} / {sync} "
                            f"({self.args.load_concurrency} clients)", load[asynchronous][t] / load[sync][t],
                            1.0, note=f"{load[asynchronous][t]:.1f} ms vs {load[sync][t]:.1f} ms; "
                            f"{load[asynchronous]['rps']:.0f} vs {load[sync]['rps']:.0f} requests/s")
            db.reset()
            out["engines"][engine] = engine_out
        return out

    # -- the run --------------------------------------------------------------------------------
    def machine(self) -> dict[str, Any]:
        def version(mod: str) -> str:
            return sh([PY, "-c", f"import {mod}; print({mod}.__version__)"], check=False).stdout.strip() or "missing"

        info: dict[str, Any] = {
            "nproc": os.cpu_count(),
            "memory": sh(["free", "-h"]).stdout.splitlines()[1].split()[1],
            "platform": platform.platform(),
            "python": platform.python_version(),
            "alembic": version("alembic"),
            "sqlalchemy": version("sqlalchemy"),
            "django": version("django"),
            "sqlite3": sh(["sqlite3", "--version"]).stdout.split()[0],
            "loadavg_start": os.getloadavg(),
            "bytecode_cache": "on (PYTHONDONTWRITEBYTECODE unset for the timed commands)"
            + (", although this shell sets it" if os.environ.get("PYTHONDONTWRITEBYTECODE") else ""),
        }
        if "postgresql" in self.servers:
            info["postgresql"] = sh(["psql", "--version"]).stdout.strip().split()[-3]
        if "mysql" in self.servers:
            info["mariadb"] = re.sub(r".*Distrib ([\w.-]+?)-MariaDB.*", r"\1", sh(["mariadb", "--version"]).stdout
                                     .strip())
        return info

    def others(self) -> list[str]:
        """Busy processes that are not ours: the machine is shared."""
        out = sh(["ps", "-eo", "pid,ppid,pcpu,etimes,args", "--sort=-pcpu"]).stdout.splitlines()[1:]
        mine = {os.getpid()}
        busy = []
        for line in out:
            pid, ppid, cpu, _etimes, args = line.split(None, 4)
            if int(pid) in mine or int(ppid) in mine or float(cpu) < 5.0:
                continue
            busy.append(f"{cpu}% {args[:90]}")
        return busy[:8]


SECTIONS = ("startup", "migrate", "memory", "at_head", "safety", "sqlmigrate", "rebuild", "health", "drivers")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="50,300,1000", help="History sizes, smallest first (default 50,300,1000).")
    p.add_argument("--engines", default=",".join(ENGINES), help="Engines (default sqlite,mysql,postgresql).")
    p.add_argument("--runs", type=int, default=5, help="Timed runs per row (default 5).")
    p.add_argument("--warmup", type=int, default=1, help="Untimed warm-up runs per row (default 1).")
    p.add_argument("--migrate-runs", type=int, default=7,
                   help="Runs for the migrate section (default 7: its 1.05x targets need the least noise).")
    p.add_argument("--memory-runs", type=int, default=2, help="Runs of migrate at the largest size (default 2).")
    p.add_argument("--rebuild-runs", type=int, default=5, help="Runs of the big-table rebuild (default 5).")
    p.add_argument("--big-rows", type=int, default=1_000_000, help="Rows of the rebuilt table (default 1,000,000).")
    p.add_argument("--load-requests", type=int, default=2000, help="Requests per endpoint per round (default 2000).")
    p.add_argument("--load-concurrency", type=int, default=16, help="Concurrent requests (default 16).")
    p.add_argument("--load-rounds", type=int, default=3, help="Rounds of load per endpoint (default 3).")
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"Sections to run (default {','.join(SECTIONS)}).")
    p.add_argument("--safety-sizes", default="60,300", help="History sizes of the safety section (default 60,300).")
    p.add_argument("--safety-runs", default="9,5",
                   help="Runs per row of the safety section, per size (default 9,5; one number: every size).")
    p.add_argument("--safety-feature-sizes", default="60",
                   help="Sizes at which the safety section times each safety feature switched off (default 60; "
                        "'' for none: MariaDB's fsyncs make N=300 take half a minute a run).")
    p.add_argument("--baseline", type=Path, default=None,
                   help="A checkout of the code before a change (e.g. `git archive main | tar -x -C DIR`): the safety "
                        "section times its migrate too, on the same history, in the same runs.")
    p.add_argument("--merge", action="store_true",
                   help="Keep the sections and targets of the existing results.json in --out that this run does not "
                        "measure (a run of some sections refreshes them without losing the others).")
    p.add_argument("--no-profiles", action="store_true", help="Skip the cProfile runs of missed targets.")
    p.add_argument("--out", type=Path, default=BENCH, help="Where results.json and RESULTS.md go (default bench/).")
    args = p.parse_args(argv)
    args.sizes = sorted(int(s) for s in args.sizes.split(","))
    args.engines = [e for e in ENGINES if e in args.engines.split(",")]
    args.sections = [s for s in SECTIONS if s in args.sections.split(",")]
    args.safety_sizes = sorted(int(s) for s in args.safety_sizes.split(","))
    runs = [int(r) for r in str(args.safety_runs).split(",")]
    args.safety_runs = runs * len(args.safety_sizes) if len(runs) == 1 else runs
    args.safety_feature_sizes = {int(s) for s in args.safety_feature_sizes.split(",") if s}
    return args


def main(argv: list[str] | None = None) -> int:
    from report import render_keeping

    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = Path(tmp)
        work.chmod(0o711)
        bench = Bench(args, work)
        bench.results["config"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        try:
            log("starting servers")
            bench.start_servers()
            bench.results["machine"] = bench.machine()
            bench.results["machine"]["busy_processes_start"] = bench.others()
            for name in args.sections:
                bench.run_section(name, getattr(bench, f"section_{name}"))
            bench.results["machine"]["loadavg_end"] = os.getloadavg()
            bench.results["machine"]["busy_processes_end"] = bench.others()
        finally:
            bench.stop_servers()
    seconds = bench.results["total_seconds"] = round(time.perf_counter() - started, 1)
    if args.merge and (args.out / "results.json").exists():
        bench.results = merged(json.loads((args.out / "results.json").read_text()), bench.results, args)
    (args.out / "results.json").write_text(json.dumps(bench.results, indent=2, default=str) + "\n")
    previous = (args.out / "RESULTS.md").read_text() if (args.out / "RESULTS.md").exists() else ""
    (args.out / "RESULTS.md").write_text(render_keeping(bench.results, previous))
    log(f"wrote {args.out / 'results.json'} and {args.out / 'RESULTS.md'} in {seconds}s")
    return 0


def merged(old: dict[str, Any], new: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """`old` (a full run) with the sections of `new` (a run of some sections) in place of its own: the machine
    and the other sections stay as `old` measured them, and a note says where the new ones come from."""
    out = dict(old)
    out["sections"] = {**old.get("sections", {}), **new["sections"]}
    names = {t["target"] for t in new["targets"]}
    kept = [t for t in old.get("targets", []) if t.get("section") not in args.sections and t["target"] not in names]
    out["targets"] = kept + new["targets"]
    out["profiles"] = {**old.get("profiles", {}), **new.get("profiles", {})}
    notes = [n for n in old.get("notes", []) if not any(f"section {s} " in n for s in args.sections)]
    for name in args.sections:
        run = new["sections"].get(name, {}).get("run", {})
        loads = run.get("loadavg") or [[0, 0, 0], [0, 0, 0]]
        notes.append(f"The section {name} comes from a separate run of `bench/run.py --sections {name}` "
                     f"({run.get('date')}, {new['total_seconds']} s; load average {fmt_load(loads[0])} at its start, "
                     f"{fmt_load(loads[1])} at its end; machine shared with other sessions' test runs).")
    out["notes"] = notes + new.get("notes", [])
    return out


if __name__ == "__main__":
    sys.exit(main())
