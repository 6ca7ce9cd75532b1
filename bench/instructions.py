#!/usr/bin/env python
"""Instructions executed by one `manage.py migrate` against one plain Alembic run, counted by valgrind's callgrind.

    python bench/instructions.py [--engines postgresql] [--sizes 60,300] [--baseline DIR] [--features]

The safety section of bench/run.py times whole processes; on a shared machine its rows of equal cost spread by
0.05-0.2, more than most changes it is meant to judge (issue 24). The instructions a process executes in user space
do not depend on the machine's load: one run each, repeatable to about 0.2 % (the cycle collector's full
collections, which fall where allocation counts happen to put them, move a run by up to 2 %). They leave out the
kernel's and the server's work, so they judge the tool's own CPU cost, not its round trips. Each engine runs under
its environment's default settings, as in the safety section (SQLite dev, MariaDB test, PostgreSQL prod), on an
empty database, then at head (`alembic current` against `migrate` with nothing to apply). `--baseline DIR`: the
same migrate from a checkout of the code before a change (as run.py's). `--features`: also each safety feature
switched off (bench/safety_off.py) at the largest size. About 30-100 s per row; needs valgrind.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import run
from run import ALEMBIC, PY, SAFETY_SETTINGS, Bench, log, sh

FEATURES = ("checksums", "applied_log", "timeouts", "lock", "topology")


def instructions(cmd: list[str], cwd: Path, env: dict[str, str], out: Path) -> int:
    """Instructions (callgrind's Ir) of one run of `cmd` (the caller has run it once outside valgrind, so that
    bytecode is compiled and caches are warm, as in the timed sections' warm-up)."""
    done = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *cmd], cwd=cwd, env=env,
                          capture_output=True, text=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"{' '.join(cmd)} under valgrind exited {done.returncode}:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--engines", default="sqlite,mysql,postgresql")
    p.add_argument("--sizes", default="60,300")
    p.add_argument("--baseline", type=Path, default=None)
    p.add_argument("--features", action="store_true")
    own = p.parse_args(argv)
    args = run.parse_args([f"--engines={own.engines}"])
    args.baseline, sizes = own.baseline, sorted(int(s) for s in own.sizes.split(","))
    rows: list[tuple[str, int, str, int]] = []
    with tempfile.TemporaryDirectory(prefix="bench-ir-") as tmp:
        work = Path(tmp)
        work.chmod(0o711)
        bench = Bench(args, work)
        bench.start_servers()
        try:
            for engine in args.engines:
                module = SAFETY_SETTINGS[engine][0]
                for n in sizes:
                    db = bench.db(engine, n, "_ir")
                    env = bench.safety_env(db)
                    tree, before = bench.tree(n), bench.baseline_tree(n)
                    migrate = ["migrate", f"--settings={module}"]
                    commands = [("alembic upgrade head", tree, [ALEMBIC, "upgrade", "head"]),
                                ("manage.py migrate", tree, [PY, str(tree / "manage.py"), *migrate])]
                    if before is not None:
                        commands.append(("manage.py migrate (before)", before,
                                         [PY, str(before / "manage.py"), *migrate]))
                    if own.features and n == sizes[-1]:
                        commands += [(f"migrate, {feature} off", tree, [PY, str(run.BENCH / "safety_off.py"), feature,
                                                                        str(tree / "manage.py"), *migrate])
                                     for feature in (*FEATURES, ",".join(FEATURES))]
                    for name, cwd, cmd in commands:
                        log(f"  {engine} N={n}: {name}")
                        db.reset()
                        sh(cmd, cwd=cwd, env=env)  # the first run writes the caches a deploy's image would have
                        db.reset()
                        rows.append((engine, n, name, instructions(cmd, cwd, env, work / "callgrind.out")))
                    # At head: a database the migrate itself brought there, with nothing to apply.
                    db.reset()
                    sh(commands[1][2], cwd=tree, env=env)
                    migrates = [(f"{label} (at head)", cwd, cmd) for label, cwd, cmd in commands
                                if label in {"manage.py migrate", "manage.py migrate (before)"}]
                    for name, cwd, cmd in [("alembic current", tree, [ALEMBIC, "current"]), *migrates]:
                        log(f"  {engine} N={n}: {name}")
                        rows.append((engine, n, name, instructions(cmd, cwd, env, work / "callgrind.out")))
        finally:
            bench.stop_servers()
    print("| engine | N | command | instructions | / Alembic |")
    print("|---|---|---|---|---|")
    for engine, n, name, count in rows:
        base = next(c for e, m, label, c in rows if (e, m) == (engine, n) and label ==
                    ("alembic current" if "at head" in name or name == "alembic current" else "alembic upgrade head"))
        print(f"| {engine} | {n} | {name} | {count / 1e6:,.1f} M | {count / base:.3f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
