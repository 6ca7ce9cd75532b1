"""What the applied log costs a `migrate` at head: a generated 300-revision history on SQLite, in-process.

Prints the median of `migrate` at head with the log's two steps (checksum verification, create/heal) and with
both replaced by no-ops, then those steps alone with a warm and a cold checksum cache, and the raw cost of
hashing every file. On demand: `.venv/bin/python bench/applied_log_cost.py` (a scratch folder in /tmp).
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]

import histories  # noqa: E402 - needs the sys.path entries above

N = 300


def timed(fn: Callable[[], object], n: int = 9) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="applied-log-bench-"))
    root = work / "migrations"
    (root / "versions").mkdir(parents=True)
    shutil.copy(ROOT / "migrations" / "env.py", root / "env.py")
    shutil.copy(ROOT / "migrations" / "script.py.mako", root / "script.py.mako")
    histories.generate(root / "versions", N)
    (work / "bench_log_settings.py").write_text("from fixture_app.settings.dev import *  # noqa\n"
                                                f"MIGRATIONS_DIR = {str(root)!r}\nTARGET_METADATA = None\n")
    sys.path.insert(0, str(work))
    os.environ["DEV_DATABASE_URL"] = f"sqlite:///{work / 'bench.db'}"
    from project.core.conf import load_settings
    from project.core.history import applied_log, checksums
    from project.core.history.scripts import alembic_config, current_heads, script_directory
    from project.core.runner import migrator

    settings = load_settings("bench_log_settings")
    migrator.migrate(settings, "head")
    script = script_directory(alembic_config(settings))

    def log_steps() -> None:
        with migrator.locked_connection(settings) as connection:
            heads = current_heads(connection)  # as migrate reads them under the lock
            logged = applied_log.verify(settings, connection, script, heads)
            applied_log.prepare(settings, connection, script, heads, logged)

    def cold() -> None:
        checksums._memory.clear()
        (checksums.cache_dir(settings) / checksums.CACHE_NAME).unlink(missing_ok=True)
        log_steps()

    verify, prepare = applied_log.verify, applied_log.prepare
    for _ in range(3):
        applied_log.verify = applied_log.prepare = lambda *_: None  # type: ignore[assignment,misc]
        without = timed(lambda: migrator.migrate(settings, "head"))
        applied_log.verify, applied_log.prepare = verify, prepare
        with_log = timed(lambda: migrator.migrate(settings, "head"))
        print(f"migrate at head, {N} revisions: {with_log * 1000:.1f} ms with the log, {without * 1000:.1f} ms without")
    paths = [rev.path for rev in script.walk_revisions()]
    hashing = timed(lambda: [checksums.source_checksum(Path(p).read_text()) for p in paths], 3)
    print(f"log steps alone: {timed(log_steps) * 1000:.1f} ms warm cache, {timed(cold, 3) * 1000:.1f} ms cold; "
          f"hashing {N} files: {hashing * 1000:.1f} ms")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
