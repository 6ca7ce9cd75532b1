"""The destructive-step policy judges what a step destroys on this database and in this plan (item 7 of issue 20).

A new environment's first deploy under CONFIRM_DESTRUCTIVE migrates a history that drops what it created itself
and renames a constraint; a database at an earlier revision is still refused a drop of a column it holds, named,
while the drops that lose nothing there are shown as such by `migrate --plan`."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from migcopy import MigrationsCopy, fixture_copy, one_clean_line
from servers import version_rows

CONFIRM = {"CONFIRM_DESTRUCTIVE": "1"}


def _history(tmp_path: Path) -> MigrationsCopy:
    """The fixture's 0001..0008, then: 0009 creates labels; 0010 renames labels' unique constraint (drop and
    re-create); 0011 does the same to projects' uq_projects_slug (created by 0005); 0012 drops labels.legacy (a
    column of the table 0009 created three revisions earlier); 0013 drops tasks.details, which 0001 created."""
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", message="labels", upgrade="""
        op.create_table(
            "labels",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("name", sa.String(length=50), nullable=False),
            sa.Column("legacy", sa.String(length=20), nullable=True),
            sa.PrimaryKeyConstraint("id", name="pk_labels"),
            sa.UniqueConstraint("name", name="uq_labels_name"),
        )
    """, downgrade='op.drop_table("labels")')
    copy.add("0010", "0009", message="rename the labels constraint", upgrade="""
        with op.batch_alter_table("labels") as batch_op:
            batch_op.drop_constraint("uq_labels_name", type_="unique")
            batch_op.create_unique_constraint("uq_labels_name_v2", ["name"])
    """, downgrade="""
        with op.batch_alter_table("labels") as batch_op:
            batch_op.drop_constraint("uq_labels_name_v2", type_="unique")
            batch_op.create_unique_constraint("uq_labels_name", ["name"])
    """)
    copy.add("0011", "0010", message="rename the projects slug constraint", upgrade="""
        with op.batch_alter_table("projects") as batch_op:
            batch_op.drop_constraint("uq_projects_slug", type_="unique")
            batch_op.create_unique_constraint("uq_projects_slug_v2", ["slug"])
    """, downgrade="""
        with op.batch_alter_table("projects") as batch_op:
            batch_op.drop_constraint("uq_projects_slug_v2", type_="unique")
            batch_op.create_unique_constraint("uq_projects_slug", ["slug"])
    """)
    copy.add("0012", "0011", message="drop labels.legacy", upgrade="""
        with op.batch_alter_table("labels") as batch_op:
            batch_op.drop_column("legacy")
    """, downgrade="""
        with op.batch_alter_table("labels") as batch_op:
            batch_op.add_column(sa.Column("legacy", sa.String(length=20), nullable=True))
    """)
    copy.add("0013", "0012", message="drop tasks.details", upgrade="""
        with op.batch_alter_table("tasks") as batch_op:
            batch_op.drop_column("details")
    """, downgrade="""
        with op.batch_alter_table("tasks") as batch_op:
            batch_op.add_column(sa.Column("details", sa.Text(), nullable=True))
    """)
    return copy


def _columns(db_url: str, table: str) -> set[str]:
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        return {c["name"] for c in sa.inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def _rows(db_url: str, sql: str) -> list[tuple]:
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            result = connection.execute(sa.text(sql))
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


def test_a_fresh_database_takes_the_whole_history_under_confirm_destructive(db_url: str, tmp_path: Path) -> None:
    copy = _history(tmp_path)
    plan = copy.manage("migrate", "--plan", db_url=db_url, env=CONFIRM, in_process=True)
    assert plan.returncode == 0, plan.stderr
    lines = plan.stdout.splitlines()
    assert not [line for line in lines if "DESTRUCTIVE" in line], plan.stdout
    # What the plan drops is shown, with why nothing is lost on this database.
    assert "  NOTHING LOST: drops unique constraint uq_labels_name on labels (0009 creates labels earlier in this " \
           "plan)" in lines, plan.stdout
    assert "  NOTHING LOST: drops column labels.legacy (0009 creates labels earlier in this plan)" in lines
    assert "  NOTHING LOST: drops column tasks.details (0001 creates tasks earlier in this plan)" in lines
    assert "  NOTHING LOST: drops unique constraint uq_projects_slug on projects (0005 creates it earlier in this " \
           "plan)" in lines

    # A new environment's first deploy: no --allow-destructive needed, nothing existed to destroy.
    migrated = copy.manage("migrate", db_url=db_url, env=CONFIRM, in_process=True)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert version_rows(db_url) == ["0013"]
    assert "legacy" not in _columns(db_url, "labels") and "details" not in _columns(db_url, "tasks")


def test_a_database_at_an_earlier_revision_is_refused_what_it_holds(db_url: str, tmp_path: Path) -> None:
    copy = _history(tmp_path)
    assert copy.manage("migrate", "0008", "-v0", db_url=db_url, in_process=True).returncode == 0
    _rows(db_url, "INSERT INTO projects (id, slug, name) VALUES (1, 'p', 'P')")
    _rows(db_url, "INSERT INTO tasks (id, project_id, title, details) VALUES (1, 1, 't', 'kept')")

    refused = copy.manage("migrate", db_url=db_url, env=CONFIRM, in_process=True)
    line = one_clean_line(refused)
    # Named: the column the database holds. Not named: what the plan creates itself, and a constraint it
    # re-creates on the same columns (no row is lost by either).
    assert "Refusing to run destructive steps (CONFIRM_DESTRUCTIVE is on): apply 0013 drops column tasks.details." \
        in line, line
    for spared in ("0010", "0011", "0012", "uq_projects_slug", "legacy"):
        assert spared not in line, line
    assert version_rows(db_url) == ["0008"] and "details" in _columns(db_url, "tasks")

    # `migrate --plan` marks the same way the policy judges.
    lines = copy.manage("migrate", "--plan", db_url=db_url, env=CONFIRM, in_process=True).stdout.splitlines()
    assert "  DESTRUCTIVE: drops column tasks.details" in lines
    assert sum("DESTRUCTIVE" in line for line in lines) == 1, lines
    assert "  NOTHING LOST: drops unique constraint uq_projects_slug on projects (this revision re-creates it as " \
           "uq_projects_slug_v2 on the same columns)" in lines, lines
    assert "  NOTHING LOST: drops column labels.legacy (0009 creates labels earlier in this plan)" in lines

    # Up to 0012 nothing the database holds is lost: it runs under CONFIRM_DESTRUCTIVE, rows intact.
    assert copy.manage("migrate", "0012", db_url=db_url, env=CONFIRM, in_process=True).returncode == 0
    assert version_rows(db_url) == ["0012"]
    assert _rows(db_url, "SELECT slug FROM projects") == [("p",)]
    ok = copy.manage("migrate", "--allow-destructive", db_url=db_url, env=CONFIRM, in_process=True)
    assert ok.returncode == 0, ok.stderr
    assert version_rows(db_url) == ["0013"] and "details" not in _columns(db_url, "tasks")


def test_a_step_that_cannot_be_inspected_loses_nothing_on_an_empty_database(db_url: str, tmp_path: Path) -> None:
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", message="count projects", upgrade="""
        n = op.get_bind().execute(sa.text("SELECT count(*) FROM projects")).scalar()
        op.create_table("audit", sa.Column("id", sa.Integer(), primary_key=True), sa.Column("n", sa.Integer()))
    """, downgrade='op.drop_table("audit")')
    plan = copy.manage("migrate", "--plan", db_url=db_url, env=CONFIRM, in_process=True)
    assert "  NOT INSPECTED: its upgrade() cannot run without a database (" in plan.stdout, plan.stdout
    assert "; the database holds no table, so nothing can be lost" in plan.stdout
    assert copy.manage("migrate", "-v0", db_url=db_url, env=CONFIRM, in_process=True).returncode == 0
    assert version_rows(db_url) == ["0009"]


def test_showmigrations_plan_on_tables_without_a_recorded_revision(tmp_path: Path) -> None:
    """migrate refuses such a database (adopt it first), so there is no plan to judge on it: showmigrations --plan
    still lists and marks the revisions, judged offline."""
    db_url = f"sqlite:///{tmp_path / 'unmanaged.db'}"
    _rows(db_url, "CREATE TABLE projects (id INTEGER PRIMARY KEY)")
    shown = fixture_copy(tmp_path).manage("showmigrations", "--plan", db_url=db_url)
    assert shown.returncode == 0, shown.stderr
    assert "      DESTRUCTIVE: drops column tasks.legacy_flag" in shown.stdout.splitlines()


def test_a_fresh_database_is_asked_once_not_inspected_revision_by_revision(tmp_path: Path, monkeypatch) -> None:
    """Under CONFIRM_DESTRUCTIVE a forward plan on a database that holds no table destroys nothing (the judge spares
    every finding there), so the policy asks the database once instead of running each pending revision offline
    (issue 24); on a database that holds tables every pending revision is inspected, and a drop is still refused."""
    import pytest
    from conftest import FIXTURE_SETTINGS

    from project.core.conf import load_settings
    from project.core.errors import DestructiveStepsRefused
    from project.core.inspection import destructive
    from project.core.runner import migrator

    monkeypatch.setenv("DEV_DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    monkeypatch.setenv("CONFIRM_DESTRUCTIVE", "1")
    settings = load_settings(FIXTURE_SETTINGS)
    assessed: list[str] = []
    real = destructive.assess_revision

    def assess(script, *args, **kwargs):
        assessed.append(script.revision)
        return real(script, *args, **kwargs)

    monkeypatch.setattr(destructive, "assess_revision", assess)
    migrator.migrate(settings, "0004")
    assert assessed == []
    migrator.migrate(settings, "0007")
    assert assessed == ["0005", "0006", "0007"]
    with pytest.raises(DestructiveStepsRefused, match="tasks.legacy_flag"):
        migrator.migrate(settings, "head")
