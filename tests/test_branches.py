"""Histories with several heads by design (expand/contract branches), as Alembic has them: `migrate heads`,
`migrate <label>@head`, `migrate <rev>` on any branch, `--plan` across branches, readiness at head when every
head is applied, and one head still the default."""

from __future__ import annotations

from pathlib import Path

import pytest
from migcopy import MigrationsCopy, fixture_copy, one_clean_line
from servers import table_names, version_rows

from project.core.errors import MigrationError
from project.core.serving import health


def _table(name: str) -> str:
    return f'op.create_table("{name}", sa.Column("id", sa.Integer(), primary_key=True))'


@pytest.fixture
def branched(tmp_path: Path) -> MigrationsCopy:
    """0008 -> e1 -> e2 (branch "expand") and 0008 -> c1 (branch "contract")."""
    copy = fixture_copy(tmp_path)
    for rev, down, label in (("e1", "0008", "expand"), ("e2", "e1", None), ("c1", "0008", "contract")):
        path = copy.add(rev, down, upgrade=_table(f"t_{rev}"), downgrade=f'op.drop_table("t_{rev}")',
                        message=f"branch step {rev}")
        if label:
            path.write_text(path.read_text().replace("branch_labels = None", f"branch_labels = ({label!r},)"))
    return copy


def test_one_head_stays_the_default(branched: MigrationsCopy, db_url: str) -> None:
    line = one_clean_line(branched.manage("migrate", db_url=db_url, in_process=True))
    assert "2 heads (c1, e2)" in line and "`manage.py migrate heads`" in line, line
    assert table_names(db_url) <= {"alembic_version"}  # nothing migrated


def test_migrate_heads_label_and_revision_on_any_branch(branched: MigrationsCopy, db_url: str) -> None:
    plan = branched.manage("migrate", "heads", "--plan", db_url=db_url, in_process=True)
    assert plan.returncode == 0, plan.stderr
    applied = [line.split()[1] for line in plan.stdout.splitlines() if line.strip().startswith("Apply ")]
    assert applied[:8] == [f"000{i}" for i in range(1, 9)] and sorted(applied[8:]) == ["c1", "e1", "e2"], applied

    result = branched.manage("migrate", "expand@head", db_url=db_url, in_process=True)
    assert result.returncode == 0, result.stderr
    assert version_rows(db_url) == ["e2"]
    result = branched.manage("migrate", "c1", db_url=db_url, in_process=True)  # the other branch, by id
    assert result.returncode == 0, result.stderr
    assert sorted(version_rows(db_url)) == ["c1", "e2"]
    check = branched.manage("migrate", "heads", "--check", db_url=db_url, in_process=True)
    assert check.returncode == 0, check.stdout + check.stderr

    shown = branched.manage("showmigrations", db_url=db_url, in_process=True)
    assert all(f"[X] {rev} " in shown.stdout for rev in ("0008", "e1", "e2", "c1")), shown.stdout
    # Branch points, labels and heads visible, as a graph would show them.
    lines = {line.split()[1]: line for line in shown.stdout.splitlines()[1:]}
    assert lines["0008"].endswith("(branches to c1, e1)"), shown.stdout
    assert lines["e1"].endswith("(branch expand)") and lines["c1"].endswith("(branch contract; head)")
    assert lines["e2"].endswith("(head)") and "(" not in lines["0007"]

    # Back along one branch only: e2 unapplied, c1 stays.
    result = branched.manage("migrate", "e1", db_url=db_url, in_process=True)
    assert result.returncode == 0, result.stderr
    assert sorted(version_rows(db_url)) == ["c1", "e1"]
    # And down below the branch point: every branch revision unapplied.
    result = branched.manage("migrate", "0008", db_url=db_url, in_process=True)
    assert result.returncode == 0, result.stderr
    assert version_rows(db_url) == ["0008"]


def test_readiness_is_at_head_when_every_head_is_applied(branched: MigrationsCopy, db_url: str) -> None:
    import importlib
    import sys

    sys.path.insert(0, branched.pythonpath)
    try:
        from project.core.conf import Settings

        settings = Settings(importlib.import_module(branched.module), branched.module)
    finally:
        sys.path.remove(branched.pythonpath)
    state = health.MigrationState.load(settings)
    assert state.head == "heads" and state.problem is None
    assert state.pending(()) == (11, 11)
    assert state.pending(("0008",)) == (3, 3)
    assert state.pending(("e2",)) == (1, 1)
    assert state.pending(("c1", "e2")) == (0, 0)
    with pytest.raises(MigrationError, match="no version file defines"):
        state.pending(("nosuch",))


def test_check_accepts_labelled_branches_but_not_accidental_heads(branched: MigrationsCopy, tmp_path: Path) -> None:
    result = branched.manage("check", in_process=True)
    assert "heads" not in result.stdout, result.stdout
    accidental = fixture_copy(tmp_path / "accidental")
    accidental.add("x1", "0008", upgrade=_table("t_x1"), downgrade='op.drop_table("t_x1")')
    accidental.add("x2", "0008", upgrade=_table("t_x2"), downgrade='op.drop_table("t_x2")')
    result = accidental.manage("check", in_process=True)
    assert result.returncode == 1
    assert "the history has 2 heads (x1, x2): run `manage.py makemigrations --merge`" in result.stdout
