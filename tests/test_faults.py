"""Faults: a revision failing half-way, and `migrate` SIGKILLed at a random moment of a long history."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from conftest import ROOT
from migcopy import MigrationsCopy, fixture_copy, one_clean_line

from project.core.db import create_engine_for
from project.core.history.scripts import current_heads

HALF_WAY = """
op.create_table("fault_t", sa.Column("id", sa.Integer(), primary_key=True))
op.add_column("projects", sa.Column("fault_c", sa.Integer(), nullable=True))
op.execute(sa.table("no_such_table", sa.column("id")).insert().values(id=1))
"""
FIXED = """
op.create_table("fault_t", sa.Column("id", sa.Integer(), primary_key=True))
with op.batch_alter_table("projects") as batch_op:
    batch_op.add_column(sa.Column("fault_c", sa.Integer(), nullable=True))
"""
FIXED_DOWN = """
with op.batch_alter_table("projects") as batch_op:
    batch_op.drop_column("fault_c")
op.drop_table("fault_t")
"""


def _inspect(db_url: str) -> tuple[set[str], set[str], tuple[str, ...]]:
    engine = create_engine_for(db_url)
    try:
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            tables = set(inspector.get_table_names())
            columns = {c["name"] for c in inspector.get_columns("projects")} if "projects" in tables else set()
            return tables, columns, current_heads(connection)
    finally:
        engine.dispose()


def test_revision_failing_half_way(db_url: str, tmp_path: Path) -> None:
    copy = fixture_copy(tmp_path)
    path = copy.add("0009", "0008", upgrade=HALF_WAY, downgrade=FIXED_DOWN, message="fault half way")
    assert copy.manage("migrate", "0008", "-v0", db_url=db_url, in_process=True).returncode == 0

    failed = copy.manage("migrate", db_url=db_url, in_process=True)
    line = one_clean_line(failed, sa.make_url(db_url).password)
    assert "Applying 0009 fault half way failed" in line and "no_such_table" in line
    tables, columns, heads = _inspect(db_url)
    assert heads == ("0008",)
    if db_url.startswith("mysql"):
        # DDL is not transactional: what ran is named, in order, and left in place.
        assert "MySQL/MariaDB cannot roll back DDL" in line
        assert "CREATE TABLE fault_t" in line and "ALTER TABLE projects ADD COLUMN fault_c" in line, line
        assert line.index("CREATE TABLE fault_t") < line.index("ALTER TABLE projects ADD COLUMN fault_c")
        assert "fault_t" in tables and "fault_c" in columns
        engine = create_engine_for(db_url)
        try:  # undo by hand, as the message says
            with engine.begin() as connection:
                connection.execute(sa.text("DROP TABLE fault_t"))
                connection.execute(sa.text("ALTER TABLE projects DROP COLUMN fault_c"))
        finally:
            engine.dispose()
    else:
        assert "Nothing of it was kept" in line
        assert "fault_t" not in tables and "fault_c" not in columns

    path.write_text(path.read_text().replace(_indent(HALF_WAY), _indent(FIXED)))
    fixed = copy.manage("migrate", "-v0", db_url=db_url, in_process=True)
    assert fixed.returncode == 0, fixed.stderr
    tables, columns, heads = _inspect(db_url)
    assert heads == ("0009",) and "fault_t" in tables and "fault_c" in columns


def _indent(body: str) -> str:
    return "\n".join("    " + line for line in body.strip().splitlines())


def _long_history(copy: MigrationsCopy, count: int) -> list[str]:
    revs = []
    down = "0008"
    for i in range(9, 9 + count):
        rev = f"{i:04d}"
        copy.add(rev, down, message=f"create k{rev}", upgrade=f"""
            op.create_table("k{rev}", sa.Column("id", sa.Integer(), primary_key=True),
                            sa.Column("v", sa.String(length=20), nullable=True))
        """, downgrade=f'op.drop_table("k{rev}")')
        revs.append(rev)
        down = rev
    return revs


def test_sigkill_at_a_random_moment(db_url: str, tmp_path: Path) -> None:
    copy = fixture_copy(tmp_path)
    revs = _long_history(copy, 40)
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    # The n-th "Applying ... OK" line: somewhere inside the 40 generated revisions, each one CREATE TABLE (the
    # recovery below relies on that), past the fixture history's own 8 and a few more.
    kill_after = rng.randint(11, 8 + len(revs))
    env = {**os.environ, "NO_COLOR": "1", **copy.env(db_url), "MIGRATE_LOCK_TIMEOUT": "30"}
    process = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "migrate"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = 0
    assert process.stdout is not None
    while seen < kill_after:
        chunk = process.stdout.readline()
        if not chunk:
            break
        seen += chunk.count("Applying")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    process.stdout.close()
    process.stderr.close()

    again = copy.manage("migrate", "-v0", db_url=db_url, env={"MIGRATE_LOCK_TIMEOUT": "30"}, timeout=300)
    if again.returncode != 0 and db_url.startswith("mysql"):
        # The kill fell inside a revision: MariaDB kept whatever of its DDL ran, but not the version row. The next
        # migrate does not run it again blind: it names the revision. Each one is a single CREATE TABLE: with its
        # table there it is finished, and marking it applied (--fake) is the recovery; else nothing of it ran.
        line = one_clean_line(again)
        rev = next(r for r in revs if f"Revision {r} " in line)
        assert "did not finish" in line and f"manage.py repair {rev}" in line, line
        if f"k{rev}" in _inspect(db_url)[0]:
            assert copy.manage("migrate", rev, "--fake", "-v0", db_url=db_url).returncode == 0
        else:
            assert copy.manage("repair", rev, "-v0", db_url=db_url).returncode == 0
        again = copy.manage("migrate", "-v0", db_url=db_url, timeout=300)
    assert again.returncode == 0, f"seed={seed} kill_after={kill_after}: {again.stderr}"
    tables, _, heads = _inspect(db_url)
    assert heads == (revs[-1],), f"seed={seed}"
    assert {f"k{r}" for r in revs} <= tables, f"seed={seed}"
