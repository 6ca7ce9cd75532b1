"""P111: a data migration's lightweight table typed otherwise than the schema at its revision.

The rule reads the schema from the history's own ops (create_table, add_column, alter_column type_ and
new_column_name, rename_table, drop_*; plain or in batch mode), compares type families only (lengths never), and
the quirk is real: the flagged revision fails on postgresql+psycopg (psycopg 3), its twin passes, and psycopg2,
which inlines the value, lets the flagged one through.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from migcopy import fixture_copy
from sqlalchemy.engine import make_url

from project.core.inspection.portability import portability_problems
from project.core.inspection.problem import Problem
from project.core.inspection.version_files import read_version_files

UPDATE_STATE = 'op.execute(t.update().values(state="done"))'
BAD = f't = sa.table("tasks", sa.column("state", sa.String(10)))\n{UPDATE_STATE}'
TWIN = f't = sa.table("tasks", sa.column("state", sa.Enum("open", "done", name="task_state")))\n{UPDATE_STATE}'


def _p111(tmp_path: Path, *revisions: str) -> list[Problem]:
    """Lint revisions 0009, 0010... (each upgrade() body given) on a copy of the fixture history."""
    copy = fixture_copy(tmp_path)
    down = "0008"
    for number, upgrade in enumerate(revisions, 9):
        copy.add(f"{number:04d}", down, upgrade=upgrade)
        down = f"{number:04d}"
    return [p for p in portability_problems(read_version_files(copy.versions)) if p.rule == "P111"]


@pytest.mark.parametrize(("schema", "declared"), [
    ('op.add_column("projects", sa.Column("score", sa.Integer()))', 'sa.column("score", sa.String(5))'),
    ('op.add_column("projects", sa.Column("meta", sa.JSON()))', 'sa.column("meta", sa.Text())'),
    ('op.add_column("projects", sa.Column("flag", sa.Boolean()))', 'sa.column("flag", sa.Integer())'),
    ('op.create_table("notes", sa.Column("id", sa.Integer(), primary_key=True))', 'sa.column("id", sa.String(9))'),
])
def test_each_failing_family_pair_is_flagged(tmp_path: Path, schema: str, declared: str) -> None:
    table = "notes" if "notes" in schema else "projects"
    found = _p111(tmp_path, schema, f'op.execute(sa.table("{table}", {declared}).delete())')
    assert [p.path.name for p in found if p.path] == ["0010_test.py"], found
    assert "[P111]" in str(found[0]) and ":" in str(found[0])


@pytest.mark.parametrize("declared", [
    'sa.column("name", sa.String(10))',   # 200 in the schema: lengths are no problem
    'sa.column("name", sa.Text())',       # same family
    'sa.column("name")',                  # untyped: no cast is rendered
    'sa.column("name", MyType())',        # a type the reading does not know is never guessed
])
def test_same_family_untyped_or_unknown_are_silent(tmp_path: Path, declared: str) -> None:
    assert _p111(tmp_path, f'op.execute(sa.table("projects", {declared}).delete())') == []


def test_schema_followed_through_renames_alters_and_batch(tmp_path: Path) -> None:
    found = _p111(
        tmp_path,
        'with op.batch_alter_table("projects") as batch_op:\n'
        '    batch_op.add_column(sa.Column("rank", sa.String(10)))\n'
        '    batch_op.alter_column("rank", type_=sa.Integer(), new_column_name="level")',
        'op.rename_table("projects", "teams")',
        # the old name is gone, and the renamed column is an integer now
        'op.execute(sa.table("projects", sa.column("level", sa.String(3))).delete())\n'
        'op.execute(sa.table("teams", sa.column("level", sa.String(3))).delete())',
    )
    assert [(p.path.name if p.path else None, "teams.level is a number" in p.message) for p in found] == [
        ("0011_test.py", True)], found


def test_silenced_on_its_line(tmp_path: Path) -> None:
    silenced = BAD.replace('sa.String(10)))', 'sa.String(10)))  # check: ignore[P111]')
    assert _p111(tmp_path, BAD) and _p111(tmp_path / "silenced", silenced) == []


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_flagged_revision_fails_on_psycopg3_and_its_twin_passes(db_url: str, tmp_path: Path) -> None:
    psycopg3 = make_url(db_url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    bad, twin = fixture_copy(tmp_path / "bad"), fixture_copy(tmp_path / "twin")
    bad.add("0009", "0008", upgrade=BAD)
    twin.add("0009", "0008", upgrade=TWIN)
    assert [p.rule for p in portability_problems(read_version_files(bad.versions))] == ["P111"]

    assert bad.manage("migrate", "0008", db_url=psycopg3).returncode == 0
    failed = bad.manage("migrate", db_url=psycopg3)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "0009" in failed.stderr and "character varying" in failed.stderr, failed.stderr
    passed = twin.manage("migrate", db_url=psycopg3)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    # psycopg2 inlines the value, so the very revision psycopg 3 refuses goes through: the rule is about drivers.
    inlined = bad.manage("migrate", "zero", db_url=db_url), bad.manage("migrate", db_url=db_url)
    assert [r.returncode for r in inlined] == [0, 0], inlined[1].stderr
