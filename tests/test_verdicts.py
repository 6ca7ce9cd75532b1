"""The destructive classifier's three answers, through the policy, on every engine: destroys data (named),
cannot be inspected offline (not destructive, shown in --plan, stopped under CONFIRM_DESTRUCTIVE with its own
message), and has no downgrade (unapplying it is refused before anything runs)."""

from __future__ import annotations

from migcopy import fixture_copy, one_clean_line
from servers import version_rows

READS_ROWS = """
    n = op.get_bind().execute(sa.text("SELECT count(*) FROM projects")).scalar()
    op.create_table("audit", sa.Column("id", sa.Integer(), primary_key=True), sa.Column("n", sa.Integer()))
    op.execute(sa.table("audit", sa.column("n", sa.Integer())).insert().values(n=n))
"""


def test_uninspectable_step_is_shown_and_stopped_with_its_own_message(db_url: str, tmp_path) -> None:
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", upgrade=READS_ROWS, downgrade='op.drop_table("audit")', message="count users")
    assert copy.manage("migrate", "0008", db_url=db_url).returncode == 0
    plan = copy.manage("migrate", "--plan", db_url=db_url)
    assert "NOT INSPECTED: its upgrade() cannot run without a database" in plan.stdout, plan.stdout
    assert "DESTRUCTIVE" not in plan.stdout
    line = one_clean_line(copy.manage("migrate", db_url=db_url, env={"CONFIRM_DESTRUCTIVE": "1"}))
    assert "Cannot tell whether these steps destroy data" in line and "apply 0009" in line, line
    assert "Refusing to run destructive steps" not in line
    assert version_rows(db_url) == ["0008"]
    # Without CONFIRM_DESTRUCTIVE (dev) it is not destructive: it runs.
    assert copy.manage("migrate", db_url=db_url).returncode == 0
    assert version_rows(db_url) == ["0009"]


def test_unapplying_a_revision_without_downgrade_is_refused_up_front(db_url: str, tmp_path) -> None:
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", message="one way",
             upgrade='op.create_table("t9", sa.Column("id", sa.Integer(), primary_key=True))',
             downgrade='raise NotImplementedError("one way")')
    copy.add("0010", "0009", message="after",
             upgrade='op.create_table("t10", sa.Column("id", sa.Integer(), primary_key=True))',
             downgrade='op.drop_table("t10")')
    assert copy.manage("migrate", db_url=db_url).returncode == 0
    plan = copy.manage("migrate", "0008", "--plan", db_url=db_url)
    assert "NO DOWNGRADE" in plan.stdout, plan.stdout
    line = one_clean_line(copy.manage("migrate", "0008", db_url=db_url))
    assert "Cannot unapply 0009" in line and "Nothing was changed" in line, line
    # Refused before 0010 was unapplied, although 0010 has a downgrade.
    assert version_rows(db_url) == ["0010"]
