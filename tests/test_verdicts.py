"""The destructive classifier's three answers, through the policy, on every engine: destroys data (named),
cannot be inspected offline (not destructive, shown in --plan, stopped under CONFIRM_DESTRUCTIVE with its own
message), and has no downgrade (unapplying it is refused before anything runs)."""

from __future__ import annotations

import pytest
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
    assert copy.manage("migrate", "0008", db_url=db_url, in_process=True).returncode == 0
    plan = copy.manage("migrate", "--plan", db_url=db_url, in_process=True)
    assert "NOT INSPECTED: its upgrade() cannot run without a database" in plan.stdout, plan.stdout
    assert "DESTRUCTIVE" not in plan.stdout
    line = one_clean_line(copy.manage("migrate", db_url=db_url, env={"CONFIRM_DESTRUCTIVE": "1"}, in_process=True))
    assert "Cannot tell whether these steps destroy data" in line and "apply 0009" in line, line
    assert "Refusing to run destructive steps" not in line
    assert version_rows(db_url) == ["0008"]
    # Without CONFIRM_DESTRUCTIVE (dev) it is not destructive: it runs.
    assert copy.manage("migrate", db_url=db_url, in_process=True).returncode == 0
    assert version_rows(db_url) == ["0009"]


def test_unapplying_a_revision_without_downgrade_is_refused_up_front(db_url: str, tmp_path) -> None:
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", message="one way",
             upgrade='op.create_table("t9", sa.Column("id", sa.Integer(), primary_key=True))',
             downgrade='raise NotImplementedError("one way")')
    copy.add("0010", "0009", message="after",
             upgrade='op.create_table("t10", sa.Column("id", sa.Integer(), primary_key=True))',
             downgrade='op.drop_table("t10")')
    assert copy.manage("migrate", db_url=db_url, in_process=True).returncode == 0
    plan = copy.manage("migrate", "0008", "--plan", db_url=db_url, in_process=True)
    assert "NO DOWNGRADE" in plan.stdout, plan.stdout
    line = one_clean_line(copy.manage("migrate", "0008", db_url=db_url, in_process=True))
    assert "Cannot unapply 0009" in line and "Nothing was changed" in line, line
    # Refused before 0010 was unapplied, although 0010 has a downgrade.
    assert version_rows(db_url) == ["0010"]


# A history written for PostgreSQL: a trigger function with a $$ body (semicolons and newlines inside), sent
# through the bind as such histories do, and a downgrade with a DO block. Dollar quotes are PostgreSQL's only.
PLPGSQL_UP = '''
    bind = op.get_bind()
    bind.execute(sa.text("""
        CREATE FUNCTION touch_tasks() RETURNS trigger AS $$
        BEGIN
            NEW.title := trim(NEW.title);
            RETURN NEW;
        END;
        $$ LANGUAGE plpgsql;
    """))
    bind.execute(sa.text(
        "CREATE TRIGGER tasks_touch BEFORE INSERT ON tasks FOR EACH ROW EXECUTE FUNCTION touch_tasks()"))
'''
PLPGSQL_DOWN = '''
    op.get_bind().execute(sa.text("""
        DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'tasks_touch') THEN
                DROP TRIGGER tasks_touch ON tasks;
            END IF;
            DROP FUNCTION IF EXISTS touch_tasks();
        END
        $$;
    """))
'''


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_plpgsql_bodies_and_do_blocks_never_crash_the_plan(db_url: str, tmp_path) -> None:
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", upgrade=PLPGSQL_UP, downgrade=PLPGSQL_DOWN, message="trim titles")
    assert copy.manage("migrate", "0008", "-v0", db_url=db_url, in_process=True).returncode == 0
    # A function body and a trigger are read (split on sqlglot's own tokens): nothing destroyed, nothing unknown.
    confirm = {"CONFIRM_DESTRUCTIVE": "1"}
    up = copy.manage("migrate", db_url=db_url, env=confirm, in_process=True)
    assert up.returncode == 0, up.stderr
    assert version_rows(db_url) == ["0009"]

    # Unapplying it runs the DO block: the plan and the migrate work (this was a TokenError naming nothing)...
    plan = copy.manage("migrate", "0008", "--plan", db_url=db_url, in_process=True)
    assert plan.returncode == 0, plan.stderr
    assert "  NOT INSPECTED: its downgrade() runs a DO block, whose PL/pgSQL cannot be inspected (DO $$ BEGIN IF " \
           "EXISTS" in plan.stdout, plan.stdout
    # ... and under CONFIRM_DESTRUCTIVE the revision is named as one that cannot be inspected.
    line = one_clean_line(copy.manage("migrate", "0008", db_url=db_url, env=confirm, in_process=True))
    assert line.startswith("CommandError: Cannot tell whether these steps destroy data, so CONFIRM_DESTRUCTIVE stops "
                           "them: unapply 0009: its downgrade() runs a DO block"), line
    assert version_rows(db_url) == ["0009"]
    down = copy.manage("migrate", "0008", db_url=db_url, in_process=True)
    assert down.returncode == 0, down.stderr
    assert version_rows(db_url) == ["0008"]
