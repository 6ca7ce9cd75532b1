"""Phases in the history (docs/phases.md): makemigrations writes the phase its operations show, `check` flags a
revision whose declared phase they contradict, and a value that is not a phase is one line. No server: the
history is replayed on the scratch SQLite database."""

from __future__ import annotations

import datetime as dt
import importlib
import io
import logging
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from migcopy import MigrationsCopy, fixture_copy
from servers import version_rows
from test_questioner import TASKS_V1, Project
from test_startup_failover import uvicorn_log_reaches_caplog

from project.core.conf import Settings
from project.core.inspection.phases import phase_problems
from project.core.management import call_command
from project.core.management.base import CommandError
from project.core.runner import fleet
from project.core.serving.startup import migrate_on_startup

NOTES = 'sa.Table("notes", Base.metadata, sa.Column("id", sa.Integer, primary_key=True))\n'


def phase_of(path: Path) -> str | None:
    found = re.findall(r"^phase: str = '(\w+)'", path.read_text(), re.M)
    return found[0] if found else None


def test_makemigrations_writes_the_inferred_phase(tmp_path: Path) -> None:
    project = Project(tmp_path)
    project.models(TASKS_V1 + NOTES)  # a new table: old code does not notice it
    result = project.manage("makemigrations", "--noinput", "-m", "notes")
    assert result.returncode == 0, result.stderr
    assert "(phase: expand)" in result.stdout
    [expand] = project.written()
    assert phase_of(expand) == "expand"

    project.models(NOTES)  # tasks dropped: old code reading it breaks
    result = project.manage("makemigrations", "--noinput", "-m", "drop tasks")
    assert result.returncode == 0, result.stderr
    contract = project.written()[1]
    assert phase_of(contract) == "contract"

    # Both at once cannot be told without asking: --noinput writes no phase (the revision runs as before).
    project.models('sa.Table("tags", Base.metadata, sa.Column("id", sa.Integer, primary_key=True))\n')
    result = project.manage("makemigrations", "--noinput", "-m", "tags for notes")
    assert result.returncode == 0, result.stderr
    assert phase_of(project.written()[2]) is None
    assert phase_problems(ScriptDirectory(str(project.versions.parent))) == []  # as inferred: nothing to flag


def test_check_flags_contract_in_expand_mixed_and_unknown_phases(tmp_path: Path) -> None:
    project = Project(tmp_path)
    project.models(TASKS_V1 + NOTES)
    assert project.manage("makemigrations", "--noinput", "-m", "notes").returncode == 0
    [path] = project.written()
    source = path.read_text()
    # The same revision, now also dropping tasks.title: a contract operation in a revision marked expand.
    path.write_text(source.replace("    # ### end Alembic commands ###",
                                   "    with op.batch_alter_table('tasks') as batch_op:\n"
                                   "        batch_op.drop_column('title')\n    # ### end Alembic commands ###", 1))
    result = project.manage("check")
    assert result.returncode == 1
    assert re.search(r"0002_\w+\.py: revision 0002_\w+ is marked expand but mixes both phases: it creates table "
                     r"notes \(expand\) and drops column tasks\.title \(contract\).* \[Z301\]", result.stdout), \
        result.stdout
    path.write_text(re.sub(r"(?s)def upgrade\(\) -> None:.*?\n\n\ndef downgrade",
                           "def upgrade() -> None:\n    op.drop_table('tasks')\n\n\ndef downgrade", source))
    history = ScriptDirectory(str(project.versions.parent))  # `check` reads the same, without a new process
    [problem] = phase_problems(history)
    assert (problem.rule, problem.path) == ("Z302", path)
    assert "is marked expand but drops table tasks, which breaks the code still running before it: mark it " \
           "phase = \"contract\"" in problem.message
    assert phase_problems(history, {"Z302"}) == []  # SILENCED_CHECKS

    path.write_text(source.replace("phase: str = 'expand'", "phase: str = 'later'"))
    [problem] = phase_problems(ScriptDirectory(str(project.versions.parent)))
    assert problem.message == "phase = 'later' is not a phase: write phase = \"expand\" or phase = \"contract\" " \
                              "(or remove the line)."
    result = project.manage("migrate", db_url=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert re.fullmatch(r"CommandError: \S*migrations/versions/0002_\w+\.py: phase = 'later' is not a phase: write "
                        r"phase = \"expand\" or phase = \"contract\" \(or remove the line\)\.\n", result.stderr), \
        result.stderr


# --- migrate honours the fleet ------------------------------------------------------------------------------


def phased_history(tmp_path: Path) -> MigrationsCopy:
    """The project's first revision, then a release adding 0002 (expand: a table) and 0003 (contract: a table
    dropped), and a later release adding 0004 (expand) and 0005 (contract)."""
    copy = fixture_copy(tmp_path)  # the fixture application's 0001 (a started project has no history of its own)
    for path in copy.versions.glob("000[2-9]_*.py"):
        path.unlink()
    table = "op.create_table({!r}, sa.Column('id', sa.Integer, primary_key=True))"
    for rev, down, phase, upgrade, downgrade in (
            ("0002", "0001", "expand", table.format("notes"), "op.drop_table('notes')"),
            ("0003", "0002", "contract", "op.drop_table('notes')", table.format("notes")),
            ("0004", "0003", "expand", table.format("tags"), "op.drop_table('tags')"),
            ("0005", "0004", "contract", "op.drop_table('tags')", table.format("tags"))):
        path = copy.add(rev, down, upgrade, downgrade, message=f"{phase} {rev}")
        path.write_text(path.read_text() + f"phase = {phase!r}\n")
    return copy


def instance(db_url: str, pid: int, head: str, seen_ago: float = 0.0, leave: bool = False) -> None:
    """An app instance's row, as project.core.serving.fleet writes it (its heartbeat: 60 s)."""
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            fleet.ensure(connection)
            if leave:
                fleet.leave(connection, f"test-{pid}")
                return
            now = fleet.utc_now() - dt.timedelta(seconds=seen_ago)
            fleet.beat(connection, fleet.Instance(f"test-{pid}", "web-1", pid, head, now, now, 60.0))
            if seen_ago:  # beat() stamps now: set the past by hand
                connection.execute(sa.update(fleet.fleet_table).where(fleet.fleet_table.c.pid == pid)
                                   .values(last_seen=now))
                connection.commit()
    finally:
        engine.dispose()


def test_migrate_holds_contract_revisions_for_live_older_code(
        tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    copy = phased_history(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("DEV_DATABASE_URL", db_url)

    def migrate(*args: str, **options: object) -> str:
        out = io.StringIO()
        call_command("migrate", *args, settings=copy.module, stdout=out, **options)
        return " ".join(out.getvalue().split())

    migrate("0001", verbosity=0)  # release 1 is deployed
    instance(db_url, 101, "0001")  # release 1 serving
    instance(db_url, 102, "0001", seen_ago=3600)  # crashed long ago: aged out

    plan = migrate(plan=True)
    assert re.search(r"Apply 0002 expand 0002 Apply 0003 contract 0003 .*WAITS: contract revision; live instances "
                     r"run code older than it: web-1 pid 101 at 0001 \(last seen \d+s ago\) Apply 0004 expand 0004 "
                     r"WAITS: after 0003 Apply 0005", plan), plan
    assert "pid 102" not in plan

    held = migrate()  # before release 2 starts: the expand revision only
    assert "Applying 0002" in held and "Applying 0003" not in held
    assert "Waiting: 0003, 0004, 0005 (from contract revision 0003 contract 0003): live instances run code older " \
           "than it: web-1 pid 101 at 0001" in held, held
    assert version_rows(db_url) == ["0002"]
    uvicorn_log_reaches_caplog(monkeypatch)
    with caplog.at_level(logging.INFO, logger="uvicorn.error"):  # a start-up migration holds it back too, in a line
        migrate_on_startup(Settings(importlib.import_module(copy.module), copy.module))
    assert "Contract revision 0003 contract 0003 waits (with 0003, 0004, 0005) for older instances to stop: " \
           "web-1 pid 101 at 0001" in caplog.text, caplog.text
    assert version_rows(db_url) == ["0002"]

    instance(db_url, 201, "0004")  # release 2 (carrying 0004 already) started ...
    instance(db_url, 101, "0001", leave=True)  # ... and release 1 stopped
    moved = migrate()
    assert "Applying 0003" in moved and "Applying 0004" in moved and "Applying 0005" not in moved
    assert "Waiting: 0005 (from contract revision 0005 contract 0005): live instances run code older than it: " \
           "web-1 pid 201 at 0004" in moved, moved
    assert version_rows(db_url) == ["0004"]

    forced = migrate(break_running_instances=True)  # the override, which breaks pid 201
    assert "Applying 0005" in forced and "Waiting" not in forced
    assert version_rows(db_url) == ["0005"]


def test_readiness_does_not_wait_for_held_contract_revisions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """New code carries the contract revisions migrate holds back for older instances and works without them:
    /health/ready counts them as pending but answers 200; a revision this code needs after one still counts."""
    from project.core.serving import health

    copy = phased_history(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    state = health.MigrationState.load(Settings(importlib.import_module(copy.module), copy.module))
    assert state.head == "0005"
    assert state.pending(("0004",)) == (1, 0)  # only 0005 (contract) waits: ready
    assert state.pending(("0003",)) == (2, 1)  # 0004 (expand) is needed
    assert state.pending(("0002",)) == (3, 2)  # 0004 (expand) comes after the held 0003: not ready
    assert state.pending(("0001",)) == (4, 3)


def test_deploy_scripts_split_at_the_first_contract_revision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """migrate --sql --phase: the DBA's two scripts, before the new code starts and once the old code is gone.
    Offline: nothing connects (the URL names the engine only)."""
    copy = phased_history(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("DEV_DATABASE_URL", "postgresql+psycopg2://nobody:secret@127.0.0.1:9/none")

    def script(*args: str) -> str:
        out = io.StringIO()
        call_command("migrate", *args, sql=True, settings=copy.module, stdout=out)
        return out.getvalue()

    expand = script("0001:head", "--phase", "expand")
    assert "CREATE TABLE notes" in expand and "DROP TABLE" not in expand and "tags" not in expand
    assert "UPDATE alembic_version SET version_num='0002'" in expand
    contract = script("0001:head", "--phase", "contract")
    assert "CREATE TABLE notes" not in contract and "DROP TABLE notes" in contract and "DROP TABLE tags" in contract
    assert "WHERE alembic_version.version_num = '0002'" in contract
    assert script("0001:head") .count("UPDATE alembic_version") == 4  # without --phase: the whole range
    with pytest.raises(CommandError, match=r"^--phase splits the script of --sql; online, migrate holds"):
        call_command("migrate", phase="expand", settings=copy.module)


def test_sql_that_cannot_be_read_asks_for_the_phase() -> None:
    """A PL/pgSQL DO block says nothing the classifier can read: the questioner asks (answered here on a text
    stream; tests/test_questioner.py answers on a real terminal)."""
    from alembic.operations import ops

    from project.core.authoring.questioner import InteractiveMigrationQuestioner, MigrationQuestioner
    from project.core.management.base import OutputWrapper
    from project.core.management.commands.makemigrations import revision_phase

    upgrade = ops.UpgradeOps([ops.ExecuteSQLOp("DO $$ BEGIN PERFORM 1; END $$")])
    screen = io.StringIO()
    asked = InteractiveMigrationQuestioner(OutputWrapper(screen), io.StringIO("2\n"))
    assert revision_phase(upgrade, asked) == "expand"
    assert "Cannot tell whether this revision breaks the code still running before it: it runs a DO block" \
        in screen.getvalue()
    assert revision_phase(upgrade, MigrationQuestioner()) is None  # --noinput: no phase
