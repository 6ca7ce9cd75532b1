"""`migrate --plan` and `migrate --check` only read: they answer at once while another process holds the
migration lock, and say that a migrate is running (issue 10, item 5).

They used to queue behind the lock for up to MIGRATE_LOCK_TIMEOUT (300 s): a deploy script asking
"anything pending?" hung while a migration ran. Here another process really holds the lock
(project.core.runner.locks.migration_lock, on each engine) and MIGRATE_LOCK_TIMEOUT is far longer than the
subprocess timeout, so a command that waited would fail with TimeoutExpired. On the fixture application's
history (tests/fixture_app, 0001..0008).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager

from conftest import ROOT
from migcopy import one_clean_line

ANSWER_WITHIN = 60  # seconds: a guard against hanging, not a speed assertion (bench/ measures speed)
HOLDER = textwrap.dedent("""
    import sys
    from project.core.db import create_engine_for
    from project.core.runner.locks import migration_lock

    engine = create_engine_for(sys.argv[1])
    with engine.connect() as connection, migration_lock(connection, timeout=30):
        print("locked", flush=True)
        sys.stdin.read()  # hold the lock until the test closes our stdin
""")


@contextmanager
def lock_held_elsewhere(db_url: str) -> Iterator[None]:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, db_url], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield
    finally:
        if holder.stdin is not None:
            holder.stdin.close()
        holder.wait(timeout=30)


def test_plan_and_check_answer_while_a_migrate_holds_the_lock(fixture_manage, db_url: str) -> None:
    assert fixture_manage("migrate", "0006", "-v0").returncode == 0
    env = {"MIGRATE_LOCK_TIMEOUT": "600"}
    with lock_held_elsewhere(db_url):
        plan = fixture_manage("migrate", "--plan", env=env, timeout=ANSWER_WITHIN)
        check = fixture_manage("migrate", "--check", env=env, timeout=ANSWER_WITHIN)
    assert plan.returncode == 0, plan.stderr
    assert "  Apply 0007 " in plan.stdout and "  Apply 0008 " in plan.stdout
    assert "A migrate is running on" in plan.stdout and "this is what remained when asked" in plan.stdout
    line = one_clean_line(check)
    assert line.startswith("CommandError: 2 migration(s) unapplied") and "A migrate is running on" in line
    assert check.returncode == 1

    # With nobody holding the lock, the same commands say nothing of a running migrate.
    quiet = fixture_manage("migrate", "--plan", env=env, timeout=ANSWER_WITHIN)
    assert quiet.returncode == 0 and "A migrate is running" not in quiet.stdout
    assert "A migrate is running" not in fixture_manage("migrate", "--check", env=env, timeout=ANSWER_WITHIN).stderr
