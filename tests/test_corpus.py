"""Real Alembic histories written elsewhere (tests/corpus/, README there): each runs up, back and up again on
every engine it supports, with rows kept across the revisions that touch them; showmigrations, `--plan` and the
branch targets on keystone's expand/contract history; and `check` reports exactly the reviewed true problems."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import TESTS_DIR, run_manage
from migcopy import one_clean_line
from servers import table_names, version_rows

CORPUS = TESTS_DIR / "corpus"
KEYSTONE_HEADS = ["742c857f1dfb", "c88cdce8f248"]  # expand, contract
OPTUNA = ["v0.9.0.a", "v1.2.0.a", "v1.3.0.a", "v2.4.0.a", "v2.6.0.a", "v3.0.0.a", "v3.0.0.b", "v3.0.0.c", "v3.0.0.d",
          "v3.2.0.a"]


def manage(name: str, *args: str, db_url: str | None = None):
    env = {"SETTINGS_MODULE": f"corpus.{name}.settings", "PYTHONPATH": str(TESTS_DIR)}
    if db_url:
        env["DEV_DATABASE_URL"] = db_url
    return run_manage(*args, env=env, in_process=True)


def ok(result) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def execute(db_url: str, *statements: str) -> list[list[tuple]]:
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            results = [connection.execute(sa.text(statement)) for statement in statements]
            return [list(result) if result.returns_rows else [] for result in results]
    finally:
        engine.dispose()


# --- optuna: SQLite, PostgreSQL (and MySQL 8, not MariaDB) -------------------------------------------------


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_optuna_up_back_and_up_with_rows(db_url: str) -> None:
    plan = ok(manage("optuna", "migrate", "--plan", db_url=db_url))
    assert [row.split()[1] for row in plan.splitlines() if row.strip().startswith("Apply ")] == OPTUNA
    # Its data migrations read rows through op.get_bind(): the classifier says it cannot inspect them.
    assert plan.count("NOT INSPECTED: its upgrade() cannot run without a database") >= 4, plan
    ok(manage("optuna", "migrate", "v2.6.0.a", db_url=db_url))
    execute(db_url,
            "INSERT INTO studies (study_id, study_name) VALUES (1, 'corpus')",
            "INSERT INTO study_directions (study_direction_id, direction, study_id, objective) "
            "VALUES (1, 'MINIMIZE', 1, 0)",
            "INSERT INTO trials (trial_id, number, study_id, state) VALUES (1, 0, 1, 'COMPLETE')",
            "INSERT INTO trial_values (trial_value_id, trial_id, objective, value) VALUES (1, 1, 0, 0.5)")
    ok(manage("optuna", "migrate", "heads", db_url=db_url))
    assert version_rows(db_url) == ["v3.2.0.a"]
    shown = ok(manage("optuna", "showmigrations", db_url=db_url))
    assert [row.split()[1] for row in shown.splitlines() if row.strip().startswith("[X]")] == OPTUNA, shown
    # v3.0.0.d split the value into value + value_type: the row survives with its value.
    [rows] = execute(db_url, "SELECT value, value_type FROM trial_values")
    assert [(v, str(t)) for v, t in rows] == [(0.5, "FINITE")]
    # Back over the two newest revisions (see the zero test for why not further) and up again.
    ok(manage("optuna", "migrate", "v3.0.0.c", db_url=db_url))
    [rows] = execute(db_url, "SELECT value FROM trial_values")
    assert rows == [(0.5,)]
    ok(manage("optuna", "migrate", "heads", db_url=db_url))
    assert version_rows(db_url) == ["v3.2.0.a"]


@pytest.mark.parametrize("db_url", ["mysql"], indirect=True)
def test_optuna_v240a_fails_on_mariadb(db_url: str) -> None:
    """v2.4.0.a drops trial_values.step, part of UNIQUE (trial_id, step): MySQL 8 shrinks the key (the file says
    so and then drops what is left), MariaDB refuses. The error names the revision and what already ran."""
    line = one_clean_line(manage("optuna", "migrate", "heads", db_url=db_url))
    assert "v2.4.0.a" in line and "Key column 'step' doesn't exist" in line, line
    assert version_rows(db_url) == ["v1.3.0.a"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_optuna_cannot_go_to_zero_its_downgrade_of_v300c_is_broken(db_url: str) -> None:
    """optuna 5.1.0's v3.0.0.c downgrade reads IntermediateValueModel.FloatTypeEnum, which its file never defines:
    the error names the revision, in one line, and the database stays at v3.0.0.c."""
    ok(manage("optuna", "migrate", "heads", db_url=db_url))
    line = one_clean_line(manage("optuna", "migrate", "zero", db_url=db_url))
    assert "v3.0.0.c" in line and "FloatTypeEnum" in line, line
    assert version_rows(db_url) == ["v3.0.0.c"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_optuna_v240a_downgrade_does_nothing_so_up_again_fails(db_url: str) -> None:
    """What P107 says of v2.4.0.a (`def downgrade(): pass`), shown: back over it leaves the
    schema as v2.4.0.a made it (studies.direction dropped, study_directions kept), so up again fails."""
    ok(manage("optuna", "migrate", "v2.4.0.a", db_url=db_url))
    ok(manage("optuna", "migrate", "v1.3.0.a", db_url=db_url))
    assert "study_directions" in table_names(db_url)
    line = one_clean_line(manage("optuna", "migrate", "v2.4.0.a", db_url=db_url))
    assert "v2.4.0.a" in line and "no such column: studies.direction" in line, line


# --- dbos: PostgreSQL only ----------------------------------------------------------------------------------


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_dbos_up_zero_up_with_rows(db_url: str) -> None:
    ok(manage("dbos", "migrate", "5c361fc04708", db_url=db_url))
    execute(db_url, "INSERT INTO dbos.workflow_status (workflow_uuid, status, name) VALUES ('w1', 'SUCCESS', 'f')",
            "INSERT INTO dbos.operation_outputs (workflow_uuid, function_id, output) VALUES ('w1', 1, 'out')")
    ok(manage("dbos", "migrate", "heads", db_url=db_url))
    assert version_rows(db_url) == ["471b60d64126"]
    [status, outputs] = execute(db_url, "SELECT workflow_uuid, status, name FROM dbos.workflow_status",
                                "SELECT workflow_uuid, function_id, output FROM dbos.operation_outputs")
    assert status == [("w1", "SUCCESS", "f")] and outputs == [("w1", 1, "out")]
    plan = ok(manage("dbos", "migrate", "zero", "--plan", db_url=db_url))
    assert plan.count("Unapply ") == 15 and "DESTRUCTIVE: drops tables dbos.workflow_inputs" in plan, plan
    assert "drops function dbos.notifications_function" in plan, plan  # raw SQL read by sqlglot
    ok(manage("dbos", "migrate", "zero", db_url=db_url))
    [tables] = execute(db_url, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'dbos'")
    assert tables == []
    ok(manage("dbos", "migrate", "heads", db_url=db_url))
    assert version_rows(db_url) == ["471b60d64126"]


@pytest.mark.parametrize("db_url", ["sqlite", "mysql"], indirect=True)
def test_dbos_does_not_run_elsewhere_and_says_where(db_url: str) -> None:
    line = one_clean_line(manage("dbos", "migrate", "heads", db_url=db_url))
    # PostgreSQL's CREATE SCHEMA / CREATE EXTENSION: SQLite rolls the revision back, MariaDB names what ran.
    assert "5c361fc04708" in line and "stays recorded at zero" in line, line
    assert ("SCHEMA" if "sqlite" in db_url else "EXTENSION") in line, line


# --- keystone: expand/contract branches, SQLite, MariaDB, PostgreSQL ----------------------------------------


def test_keystone_branches(db_url: str) -> None:
    line = one_clean_line(manage("keystone", "migrate", db_url=db_url))
    assert "2 heads" in line and "migrate heads" in line, line
    plan = ok(manage("keystone", "migrate", "heads", "--plan", db_url=db_url))
    planned = [row.split()[1] for row in plan.splitlines() if row.strip().startswith("Apply ")]
    assert planned[0] == "27e647c0fad4" and len(planned) == 10, plan

    ok(manage("keystone", "migrate", "expand@head", db_url=db_url))
    assert version_rows(db_url) == ["742c857f1dfb"]
    execute(db_url, "INSERT INTO region (id, description, extra) VALUES ('r1', 'corpus', '{}')",
            "INSERT INTO project (id, name, enabled, domain_id, is_domain, extra) "
            "VALUES ('p1', 'corpus', TRUE, '<<keystone.domain.root>>', FALSE, '{}')")
    ok(manage("keystone", "migrate", "heads", db_url=db_url))
    assert sorted(version_rows(db_url)) == KEYSTONE_HEADS
    [regions, projects] = execute(db_url, "SELECT id, description FROM region",
                                  "SELECT id, name FROM project WHERE id = 'p1'")
    assert regions == [("r1", "corpus")] and projects == [("p1", "corpus")]

    shown = ok(manage("keystone", "showmigrations", db_url=db_url))
    marks = {row.split()[1]: row for row in shown.splitlines() if row.strip().startswith("[")}
    assert len(marks) == 10 and all("[X]" in row for row in marks.values()), shown
    assert marks["27e647c0fad4"].endswith("(branches to 29e87d24a316, e25ffa003242)"), shown
    assert marks["29e87d24a316"].endswith("(branch expand)") and marks["e25ffa003242"].endswith("(branch contract)")
    assert all(marks[head].endswith("head)") for head in KEYSTONE_HEADS), shown
    # OpenStack writes no downgrades: refused before anything runs.
    line = one_clean_line(manage("keystone", "migrate", "zero", db_url=db_url))
    assert "downgrade" in line, line
    assert sorted(version_rows(db_url)) == KEYSTONE_HEADS


# --- check: exactly the reviewed true problems --------------------------------------------------------------

PROBLEM = re.compile(r"^tests/corpus/(?P<file>[^:]+):(?P<line>\d+): .*\[(?P<rule>P\d+)\]$")


def reviewed(name: str) -> set[str]:
    """tests/corpus/<name>/check.txt: `file:line rule  # why it is true`, one reviewed true problem a line."""
    text = (CORPUS / name / "check.txt").read_text()
    return {row.split("#")[0].strip() for row in text.splitlines() if row.split("#")[0].strip()}


LOCK_WARNING = re.compile(r":\d+: L\d{3} (postgresql|mysql|sqlite): ")


@pytest.mark.parametrize("name", ["optuna", "dbos", "keystone"])
def test_check_reports_only_the_reviewed_true_problems(name: str, tmp_path: Path) -> None:
    result = manage(name, "check", db_url=f"sqlite:///{tmp_path / 'unused.sqlite3'}")
    reported = set()
    for row in result.stdout.splitlines():
        if row.startswith("System check identified") or LOCK_WARNING.search(row):
            continue  # the lock/rewrite lint (docs/safety.md) is measured against squawk, not here
        match = PROBLEM.match(row)
        if match:
            path = match["file"].split("/migrations/versions/")[-1]
            reported.add(f"{path}:{match['line']} {match['rule']}")
        else:
            reported.add(row)
    assert reported == reviewed(name), result.stdout + result.stderr
