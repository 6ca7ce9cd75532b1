"""Backfills that do not stall (issue 23, item 4; project.core.history.backfill): a data change in batches, one
transaction per batch with its progress row, resumed after a kill, rendered offline as a loop.

Real servers and the real CLI on the fixture application's history plus 0009 (expand: two new columns on tasks)
and 0010 (expand: the backfill, alone in its revision). The backfill increments `counter`, so a batch applied
twice shows as a 2: exactly-once is checked row by row.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import ROOT
from migcopy import MigrationsCopy, fixture_copy, one_clean_line
from test_offline_sql import Engine, engine  # noqa: F401 - the fixture

from project.core.bookkeeping import BACKFILL_TABLE
from project.core.db import create_engine_for
from project.core.history import applied_log
from project.core.history.scripts import current_heads

COLUMNS = """
op.add_column("tasks", sa.Column("counter", sa.Integer(), server_default="0", nullable=False))
op.add_column("tasks", sa.Column("title_upper", sa.String(200), nullable=True))
"""
COLUMNS_DOWN = """
with op.batch_alter_table("tasks") as batch_op:
    batch_op.drop_column("title_upper")
    batch_op.drop_column("counter")
"""


def _history(tmp_path: Path, *, batch_size: int = 7, pause: float = 0.0, where: str | None = None) -> MigrationsCopy:
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", upgrade=COLUMNS, downgrade=COLUMNS_DOWN, message="tasks counter and title_upper")
    copy.add("0010", "0009", message="backfill tasks", upgrade=f"""
        from project.core.history.backfill import backfill

        backfill("tasks", {{"counter": "counter + 1", "title_upper": "upper(title)"}}, where={where!r},
                 batch_size={batch_size}, pause={pause})
    """)
    return copy


def _fill(db_url: str, rows: int) -> None:
    """A project and `rows` tasks, with gaps in the ids (deleted rows) so that the key ranges are uneven."""
    database = create_engine_for(db_url)
    try:
        with database.begin() as connection:
            connection.execute(sa.text("INSERT INTO projects (slug, name) VALUES ('p', 'p')"))
            project = connection.execute(sa.text("SELECT id FROM projects")).scalar()
            connection.execute(sa.text("INSERT INTO tasks (project_id, title) VALUES (:p, :t)"),
                               [{"p": project, "t": f"task {i}"} for i in range(rows + rows // 10)])
            connection.execute(sa.text("DELETE FROM tasks WHERE MOD(id, 11) = 3" if connection.dialect.name != "sqlite"
                                       else "DELETE FROM tasks WHERE id % 11 = 3"))
    finally:
        database.dispose()


def _tasks(db_url: str) -> list[tuple[int, str, int, str | None]]:
    database = create_engine_for(db_url)
    try:
        with database.connect() as connection:
            return [tuple(r) for r in connection.execute(
                sa.text("SELECT id, title, counter, title_upper FROM tasks ORDER BY id"))]
    finally:
        database.dispose()


def _log(db_url: str) -> list[tuple[str, str, str | None]]:
    """The applied log's (revision, state, statements) rows of 0010, oldest first."""
    database = create_engine_for(db_url)
    try:
        with database.connect() as connection:
            table = applied_log.log_table
            return [(r.revision, r.state, r.statements) for r in connection.execute(
                sa.select(table).where(table.c.revision == "0010").order_by(table.c.id))]
    finally:
        database.dispose()


def _progress(db_url: str) -> list[tuple[str, str, int, int, str]]:
    database = create_engine_for(db_url)
    try:
        with database.connect() as connection:
            if not sa.inspect(connection).has_table(BACKFILL_TABLE):
                return []
            return [tuple(r) for r in connection.execute(
                sa.text(f"SELECT revision, name, rows_done, batches, state FROM {BACKFILL_TABLE}"))]
    finally:
        database.dispose()


def _assert_backfilled_once(db_url: str, rows: int) -> None:
    tasks = _tasks(db_url)
    assert len(tasks) == rows + rows // 10 - sum(1 for i in range(1, rows + rows // 10 + 1) if i % 11 == 3)
    assert [t for t in tasks if t[2] != 1] == []  # every row incremented exactly once
    assert all(upper == title.upper() for _, title, _, upper in tasks)


def test_backfill_in_batches_on_three_engines(db_url: str, tmp_path: Path) -> None:
    """migrate shows the backfill's progress and its outcome, and the applied log keeps the outcome; the progress
    row is gone once the revision is recorded; the tool's table is left out of `check --database`'s comparison."""
    copy = _history(tmp_path)
    assert copy.manage("migrate", "0009", db_url=db_url, in_process=True).returncode == 0
    _fill(db_url, 100)
    result = copy.manage("migrate", db_url=db_url, in_process=True, env={"NO_COLOR": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    count = len(_tasks(db_url))
    batches = -(-count // 7)
    out = result.stdout
    assert "  Applying 0010 backfill tasks...\n    backfill tasks: tasks by id, batches of 7, 0s apart\n" in out, out
    assert f"    backfill tasks: done, {count} rows in {batches} batches of up to 7 by id" in out, out
    assert "\n  Applying 0010 backfill tasks... OK (" in out, out
    _assert_backfilled_once(db_url, 100)
    [(_, state, notes)] = _log(db_url)
    assert state == "applied" and notes is not None
    assert notes.startswith(f"-- backfill tasks: done, {count} rows in {batches} batches") and "resumed" not in notes
    assert _progress(db_url) == []  # done with: deleted with the version row

    # Down and up again: the backfill runs again (its progress went with the revision).
    assert copy.manage("migrate", "0009", db_url=db_url, in_process=True).returncode == 0
    assert copy.manage("migrate", db_url=db_url, in_process=True).returncode == 0
    assert {t[2] for t in _tasks(db_url)} == {2}


def test_backfill_progress_line_every_100_batches(db_url: str, tmp_path: Path) -> None:
    """Between its first and last lines, migrate says where the backfill is every 100 batches (or 10 s)."""
    copy = _history(tmp_path, batch_size=1)
    assert copy.manage("migrate", "0009", db_url=db_url, in_process=True).returncode == 0
    _fill(db_url, 110)
    result = copy.manage("migrate", db_url=db_url, in_process=True)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line.strip() for line in result.stdout.splitlines() if line.startswith("    backfill tasks: ")]
    assert lines[0] == "backfill tasks: tasks by id, batches of 1, 0s apart", lines
    assert lines[-1].startswith(f"backfill tasks: done, {len(_tasks(db_url))} rows in "), lines
    middle = lines[1:-1]
    assert middle and all(re.fullmatch(r"backfill tasks: (\d+) rows in \1 batches, id at \d+ \(\d+% of its range\)", m)
                          for m in middle), middle


def test_backfill_where_and_string_key(db_url: str, tmp_path: Path) -> None:
    """`where` limits the rows (and what a batch counts); a string key is walked in the database's own order."""
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", message="codes", upgrade="""
        op.create_table("codes", sa.Column("code", sa.String(20), primary_key=True),
                        sa.Column("n", sa.Integer(), nullable=False), sa.Column("label", sa.String(40)))
    """, downgrade='op.drop_table("codes")')
    copy.add("0010", "0009", message="label codes", upgrade="""
        from project.core.history.backfill import backfill

        backfill("codes", {"label": "'even'"}, where="MOD(n, 2) = 0", key="code", batch_size=3, pause=0)
    """)
    assert copy.manage("migrate", "0009", db_url=db_url, in_process=True).returncode == 0
    database = create_engine_for(db_url)
    try:
        with database.begin() as connection:
            connection.execute(sa.text("INSERT INTO codes (code, n) VALUES (:c, :n)"),
                               [{"c": f"c{n:03d}", "n": n} for n in range(40)])
        result = copy.manage("migrate", db_url=db_url, in_process=True)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "done, 20 rows in 7 batches of up to 3 by code" in result.stdout, result.stdout
        with database.connect() as connection:
            rows = connection.execute(sa.text("SELECT n, label FROM codes")).all()
        assert sorted(n for n, label in rows if label == "even") == list(range(0, 40, 2))
        assert all(label is None for n, label in rows if n % 2)
    finally:
        database.dispose()


def _start(copy: MigrationsCopy, db_url: str) -> subprocess.Popen[str]:
    env = {**os.environ, "NO_COLOR": "1", **copy.env(db_url), "MIGRATE_LOCK_TIMEOUT": "30"}
    return subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "migrate"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("seed", [23, 4])
def test_backfill_killed_at_random_moments_resumes_exactly_once(db_url: str, tmp_path: Path, seed: int) -> None:
    """`manage.py migrate` SIGKILLed three times at seeded random moments while it backfills, then run to the end:
    every row incremented exactly once, the batches counted once (the outcome's row count is the table's), the
    applied log saying applied, resumed; on MariaDB the killed runs are there too, as interrupted."""
    rng = random.Random(seed)
    copy = _history(tmp_path, batch_size=5, pause=0.02)
    assert copy.manage("migrate", "0009", db_url=db_url, in_process=True).returncode == 0
    _fill(db_url, 300)
    count = len(_tasks(db_url))
    landed = 0  # kills that found the backfill part-way (a progress row, not done)
    for _ in range(3):
        process = _start(copy, db_url)
        deadline = time.monotonic() + 120
        while not _progress(db_url) and process.poll() is None:  # the backfill has begun
            assert time.monotonic() < deadline, "the backfill never started"
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.6))
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
        progress = _progress(db_url)
        landed += bool(progress and progress[0][4] == "running")
        tasks = _tasks(db_url)
        assert {t[2] for t in tasks} <= {0, 1}  # never twice, even mid-way
        if progress:  # what the progress row says is committed is exactly what the rows show
            assert sum(t[2] for t in tasks) == progress[0][2]
    assert landed >= 1, "no kill landed mid-backfill: the test proved nothing"
    process = _start(copy, db_url)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stdout + stderr
    assert "backfill tasks: resumed after" in stdout, stdout
    _assert_backfilled_once(db_url, 300)
    log = _log(db_url)
    state, notes = log[-1][1], log[-1][2]
    assert state == "applied" and notes is not None, log
    assert f"done, {count} rows in " in notes and "earlier run(s)" in notes, notes
    if sa.make_url(db_url).get_backend_name() == "mysql":
        # Each killed run: its `running` row (written before the revision), then the next migrate's `failed` row
        # saying it was interrupted; the newest row is the state.
        pairs = [(log[i][1], log[i + 1][1], log[i + 1][2]) for i in range(0, len(log) - 1, 2)]
        assert pairs and len(log) % 2 == 1, log
        assert all(r == "running" and f == "failed" and "interrupted" in (why or "") for r, f, why in pairs), log
    assert _progress(db_url) == []


# A trigger that inserts a row the backfill matches for each row it updates (ids bounded, so that a walk chasing
# them ends): the rows code writes while a backfill runs, made deterministic. MariaDB refuses a trigger writing its
# own table (error 1442); the walk's end is the same Python on every engine.
GROW = {
    "sqlite": ["CREATE TRIGGER grow AFTER UPDATE OF counter ON tasks WHEN NEW.id < 1000 BEGIN "
               "INSERT INTO tasks (project_id, title) VALUES (NEW.project_id, 'later'); END"],
    "postgresql": ["CREATE FUNCTION grow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.id < 1000 THEN "
                   "INSERT INTO tasks (project_id, title) VALUES (NEW.project_id, 'later'); END IF; RETURN NULL; "
                   "END $$",
                   "CREATE TRIGGER grow AFTER UPDATE OF counter ON tasks FOR EACH ROW EXECUTE FUNCTION grow()"],
}


@pytest.mark.parametrize("kind", list(GROW))
def test_backfill_ends_at_the_highest_key_it_started_with(kind: str, request: pytest.FixtureRequest,
                                                          tmp_path: Path) -> None:
    """Rows inserted while a backfill runs, matching its `where` (here: one per row it updates): the walk ends at
    the highest key there was when it started, leaving the new rows to the code that writes them (the recipes'
    release 1, the rename's triggers). Before, it found new rows after every batch: under a steady stream of
    inserts it never finished."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'grow.db'}"
    else:
        url = request.getfixturevalue("pg_server").create_database(f"t_grow_{os.getpid()}")
    copy = _history(tmp_path, batch_size=7)
    assert copy.manage("migrate", "0009", db_url=url, in_process=True).returncode == 0
    _fill(url, 100)
    first = [t[0] for t in _tasks(url)]
    database = create_engine_for(url)
    try:
        with database.begin() as connection:
            for statement in GROW[kind]:
                connection.exec_driver_sql(statement)
    finally:
        database.dispose()
    result = copy.manage("migrate", db_url=url, in_process=True)
    assert result.returncode == 0, result.stdout + result.stderr
    tasks = _tasks(url)
    assert [t[0] for t in tasks if t[2] == 1] == first  # the rows there at the start, each once
    assert len(tasks) == 2 * len(first), "the trigger did not insert a row per row updated"
    assert {t[2] for t in tasks if t[0] not in set(first)} == {0}
    notes = _log(url)[-1][2] or ""
    assert f"done, {len(first)} rows in " in notes, notes


def test_backfill_interrupted_by_sigterm_says_it_resumes(db_url: str, tmp_path: Path) -> None:
    """SIGTERM mid-backfill: one line saying the committed batches are kept and migrate resumes; then it does."""
    copy = _history(tmp_path, batch_size=5, pause=0.05)
    assert copy.manage("migrate", "0009", db_url=db_url, in_process=True).returncode == 0
    _fill(db_url, 200)
    process = _start(copy, db_url)
    deadline = time.monotonic() + 120
    while not (_progress(db_url) and _progress(db_url)[0][3] >= 2):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, stdout + stderr
    assert "Traceback" not in stderr
    [line] = stderr.splitlines()
    assert line.startswith("Interrupted (SIGTERM) while applying 0010 backfill tasks: the database stays recorded "
                           "at 0009; the batches its backfill committed are kept"), line
    assert line.endswith("re-run migrate to resume."), line
    result = copy.manage("migrate", db_url=db_url, in_process=True)
    assert result.returncode == 0, result.stdout + result.stderr
    _assert_backfilled_once(db_url, 200)


def test_backfill_batch_failing_keeps_what_committed(db_url: str, tmp_path: Path) -> None:
    """A batch that fails (a value its CHECK constraint refuses, on row 30) ends migrate in one line naming what is
    kept; fixed, the next migrate resumes from there."""
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", message="short", upgrade="""
        op.create_table("items", sa.Column("id", sa.Integer(), primary_key=True),
                        sa.Column("n", sa.Integer(), nullable=False), sa.Column("short", sa.String(3)),
                        sa.Column("hits", sa.Integer(), nullable=False, server_default="0"),
                        sa.CheckConstraint("short IS NULL OR short <> 'bad'", name="ck_items_short"))
    """, downgrade='op.drop_table("items")')
    backfill_file = copy.add("0010", "0009", message="fill short", upgrade="""
        from project.core.history.backfill import backfill

        backfill("items", {"short": "CASE WHEN n = 30 THEN 'bad' ELSE 'ok' END", "hits": "hits + 1"},
                 batch_size=4, pause=0)
    """)
    assert copy.manage("migrate", "0009", db_url=db_url, in_process=True).returncode == 0
    database = create_engine_for(db_url)
    try:
        with database.begin() as connection:
            connection.execute(sa.text("INSERT INTO items (id, n) VALUES (:n, :n)"), [{"n": n} for n in range(1, 41)])
        failed = copy.manage("migrate", db_url=db_url, in_process=True)
        line = one_clean_line(failed, sa.make_url(db_url).password)
        assert line.startswith("CommandError: Applying 0010 fill short failed: "), line
        assert "The database stays recorded at 0009; the batches its backfill committed are kept (items: 7 " \
               "batches (28 rows) up to key 28), and the next migrate resumes after them" in line, line
        with database.connect() as connection:
            hits = dict(connection.execute(sa.text("SELECT id, hits FROM items")).all())
        assert hits == {n: 1 if n <= 28 else 0 for n in range(1, 41)}
        backfill_file.write_text(backfill_file.read_text().replace("'bad'", "'ok'"))
        result = copy.manage("migrate", db_url=db_url, in_process=True)
        assert result.returncode == 0, result.stdout + result.stderr
        with database.connect() as connection:
            assert {h for (h,) in connection.execute(sa.text("SELECT hits FROM items"))} == {1}
    finally:
        database.dispose()


def test_backfill_rendered_offline_runs_on_each_engine(engine: Engine, tmp_path: Path,  # noqa: F811
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """`migrate --sql 0009:0010` applied with the engine's own client to a database at 0009 holding rows: the
    PostgreSQL DO block and the MariaDB compound statement commit batch by batch (resumable: applied a second
    time, from its guard, it changes nothing); SQLite gets one UPDATE and says so."""
    copy = _history(tmp_path, batch_size=6, pause=0.01)
    url = engine.new_database()
    assert copy.manage("migrate", "0009", db_url=url, in_process=True).returncode == 0
    _fill(url, 60)
    result = copy.manage("migrate", "--sql", "0009:0010", db_url=url, in_process=True)
    assert result.returncode == 0, result.stderr
    script = result.stdout
    if engine.kind == "postgresql":
        assert "DO $backfill$" in script and "COMMIT;\n        v_last := v_upper;" in script, script
    elif engine.kind == "mysql":
        assert "DELIMITER //\nBEGIN NOT ATOMIC" in script, script
    else:
        assert "SQLite has no loops in SQL, so this is one UPDATE" in script, script
    engine.apply(url, script)
    _assert_backfilled_once(url, 60)
    engine_ = create_engine_for(url)
    try:
        with engine_.connect() as connection:
            assert connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0010"
            if engine.kind != "sqlite":
                assert connection.execute(sa.text(f"SELECT COUNT(*) FROM {BACKFILL_TABLE}")).scalar() == 0
    finally:
        engine_.dispose()
    assert _log(url)[-1][1] == "applied"
    if engine.kind != "sqlite":
        # The loop resumes: on a database whose progress row says the batches up to a key are done (a script
        # stopped there), the same script changes only the rows after it.
        from project.core.history.backfill import progress_table

        resumed = engine.new_database()
        assert copy.manage("migrate", "0009", db_url=resumed, in_process=True).returncode == 0
        _fill(resumed, 60)
        middle = _tasks(resumed)[20][0]
        database = create_engine_for(resumed)
        try:
            with database.begin() as connection:
                progress_table.create(connection)
                connection.execute(progress_table.insert().values(
                    revision="0010", name="tasks", last_key=str(middle), rows_done=21, batches=4, runs=1,
                    state="running"))
        finally:
            database.dispose()
        engine.apply(resumed, script)
        assert {(t[0] > middle, t[2]) for t in _tasks(resumed)} == {(False, 0), (True, 1)}
    # sqlmigrate shows the same loop.
    review = copy.manage("sqlmigrate", "0010", db_url=url, in_process=True)
    assert review.returncode == 0 and "backfill tasks" in review.stdout, review.stderr


def test_backfill_on_async_drivers(db_url: str, tmp_path: Path) -> None:
    """The batches' own transactions through the async drivers (asyncpg, aiomysql, aiosqlite) too."""
    driver = {"postgresql": "postgresql+asyncpg", "mysql": "mysql+aiomysql", "sqlite": "sqlite+aiosqlite"}
    url = sa.make_url(db_url)
    async_url = url.set(drivername=driver[url.get_backend_name()]).render_as_string(hide_password=False)
    copy = _history(tmp_path)
    assert copy.manage("migrate", "0009", db_url=async_url, in_process=True).returncode == 0
    _fill(db_url, 50)
    result = copy.manage("migrate", db_url=async_url, in_process=True)
    assert result.returncode == 0, result.stdout + result.stderr
    _assert_backfilled_once(db_url, 50)
    assert _log(db_url)[-1][1] == "applied"


# --- the recipes of docs/phases.md, run as written ---------------------------------------------------------------

RECIPES = {  # section title in docs/phases.md -> what the projects/tasks rows hold after the expand revisions
    "Rename a column": "SELECT slug, title FROM projects ORDER BY slug",
    "Change a column's type": "SELECT slug, status FROM projects ORDER BY slug",
    "Add a NOT NULL column without a default": "SELECT title, priority FROM tasks ORDER BY title",
    "Split a column": "SELECT slug, first_word, rest FROM projects ORDER BY slug",
}
EXPECTED = {
    "Rename a column": [("acme", "Acme Web"), ("none", None), ("solo", "Solo")],
    "Change a column's type": [("acme", "active"), ("none", "active"), ("solo", "inactive")],
    "Add a NOT NULL column without a default": [("closed", 0), ("open", 1)],
    "Split a column": [("acme", "Acme", "Web"), ("none", None, None), ("solo", "Solo", "")],
}


def _recipe(title: str) -> list[tuple[str, str]]:
    """The (phase, upgrade() body) of each revision of a recipe in docs/phases.md."""
    import re
    import textwrap

    text = (ROOT / "docs" / "phases.md").read_text()
    section = text.split(f"### {title}\n", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    revisions = []
    for chunk in re.split(r"^# revision \d+, ", code, flags=re.M)[1:]:
        phase = re.match(r'phase = "(\w+)"', chunk)
        assert phase is not None, chunk
        body = chunk.split("def upgrade() -> None:\n", 1)[1]
        revisions.append((phase.group(1), textwrap.dedent(body)))
    return revisions


@pytest.mark.parametrize("title", list(RECIPES))
def test_the_recipes_run_as_written(db_url: str, tmp_path: Path, title: str) -> None:
    """Each recipe's three revisions on the fixture's projects/tasks (rows written before release 1): the expand
    revisions fill the new shape, `check`'s phase rules find nothing to say, the contract revision applies."""
    from alembic.script import ScriptDirectory

    from project.core.inspection.phases import phase_problems

    copy = fixture_copy(tmp_path)
    down = "0008"
    for number, (phase, body) in enumerate(_recipe(title), start=9):
        if "backfill(" in body:
            body = "from project.core.history.backfill import backfill\n" + body
        path = copy.add(f"{number:04d}", down, upgrade=body, message=f"{title} {number - 8}")
        path.write_text(path.read_text().replace("depends_on = None\n", f"depends_on = None\nphase = {phase!r}\n"))
        down = f"{number:04d}"
    assert phase_problems(ScriptDirectory(str(copy.root))) == []
    assert copy.manage("migrate", "0008", db_url=db_url, in_process=True).returncode == 0
    database = create_engine_for(db_url)
    try:
        with database.begin() as connection:
            connection.execute(sa.text("INSERT INTO projects (slug, name, is_active) VALUES (:s, :n, :a)"), [
                {"s": "acme", "n": "Acme Web", "a": True}, {"s": "solo", "n": "Solo", "a": False},
                {"s": "none", "n": None, "a": True}])
            project = connection.execute(sa.text("SELECT id FROM projects WHERE slug = 'acme'")).scalar()
            connection.execute(sa.text("INSERT INTO tasks (project_id, title, state) VALUES (:p, :t, :s)"), [
                {"p": project, "t": "open", "s": "open"}, {"p": project, "t": "closed", "s": "done"}])
        result = copy.manage("migrate", "0010", db_url=db_url, in_process=True)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "backfill" in result.stdout and ": done, " in result.stdout, result.stdout
        with database.connect() as connection:
            assert [tuple(row) for row in connection.execute(sa.text(RECIPES[title]))] == EXPECTED[title]
        result = copy.manage("migrate", db_url=db_url, in_process=True)
        assert result.returncode == 0, result.stdout + result.stderr
        with database.connect() as connection:
            assert current_heads(connection) == ("0011",)
    finally:
        database.dispose()


def test_check_flags_a_backfill_beside_other_operations(tmp_path: Path) -> None:
    """Z303: the backfill commits what ran before it, so a revision with both would not resume after a kill; a
    revision holding only the backfill (with or without a phase) is clean. No database: the files are read."""
    from alembic.script import ScriptDirectory

    from project.core.inspection.destructive import assess_revision
    from project.core.inspection.phases import phase_problems, revision_inference

    copy = _history(tmp_path)
    history = ScriptDirectory(str(copy.root))
    assert phase_problems(history) == []
    # Recorded as itself (a custom Alembic operation), not as the SQL it renders: CONFIRM_DESTRUCTIVE's inspection
    # finds it neither destructive nor uninspectable (a DO block would be), and the phase it shows is expand.
    verdict = assess_revision(history.get_revision("0010"))
    assert (verdict.destroys, verdict.uninspectable) == ([], None)
    assert revision_inference(history.get_revision("0010")).phase == "expand"
    mixed = copy.add("0011", "0010", message="both", upgrade="""
        from project.core.history.backfill import backfill

        op.add_column("tasks", sa.Column("flag", sa.Integer(), nullable=True))
        backfill("tasks", {"flag": "1"})
    """)
    [problem] = phase_problems(ScriptDirectory(str(copy.root)))
    assert (problem.rule, problem.path) == ("Z303", mixed)
    assert "revision 0011 runs a backfill beside other operations" in problem.message
    assert phase_problems(ScriptDirectory(str(copy.root)), {"Z303"}) == []
