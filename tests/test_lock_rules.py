"""`check --locks` and `migrate --plan`'s LOCKS: marks (project.core.inspection.lock_rules).

Each rule on a revision that has the problem and on its safe twin, per engine it covers; the revision files
are real modules run under the recording Operations, offline for each engine. Then silencing, the CLI
format, the plan marks on every engine, and the comparison with squawk on a generated history.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import textwrap
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import ROOT
from migcopy import fixture_copy

from project.core.inspection import lock_rules

HEADER = "import sqlalchemy as sa\nfrom alembic import op\n\n\ndef upgrade() -> None:\n"


def _revision(tmp_path: Path, body: str) -> SimpleNamespace:
    """A revision module written to a file and imported, shaped as Alembic's Script (module, path)."""
    path = tmp_path / f"rev_{uuid.uuid4().hex[:8]}.py"
    path.write_text(HEADER + textwrap.indent(textwrap.dedent(body).strip(), "    ") + "\n")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return SimpleNamespace(module=module, path=str(path))


def _rules(tmp_path: Path, body: str, engine: str) -> set[str]:
    return {f.rule for f in lock_rules.revision_findings(_revision(tmp_path, body), engine)}


CONCURRENT_INDEX = """
with op.get_context().autocommit_block():
    op.create_index("ix_t_a", "t", ["a"], postgresql_concurrently=True)
"""

# (rule, engines, naive revision, safe twin)
CASES = [
    ("L201", ["postgresql"], 'op.create_index("ix_t_a", "t", ["a"])', CONCURRENT_INDEX),
    ("L201", ["postgresql"], 'op.execute("CREATE INDEX ix_t_a ON t (a)")',
     'op.execute("CREATE INDEX CONCURRENTLY ix_t_a ON t (a)")'),
    ("L202", ["postgresql", "mysql"],
     'with op.batch_alter_table("t") as b:\n    b.alter_column("a", existing_type=sa.Integer(), type_=sa.BigInteger())',
     'op.add_column("t", sa.Column("a_big", sa.BigInteger(), nullable=True))'),
    ("L202", ["postgresql"],
     'if op.get_bind().dialect.name == "postgresql":\n    op.execute("ALTER TABLE t ALTER COLUMN a TYPE BIGINT")',
     'if op.get_bind().dialect.name == "postgresql":\n    op.execute("ALTER TABLE t ADD COLUMN a_big BIGINT")'),
    ("L202", ["mysql"], 'if op.get_bind().dialect.name == "mysql":\n    op.execute("ALTER TABLE t MODIFY a BIGINT")',
     'if op.get_bind().dialect.name == "mysql":\n    op.execute("ALTER TABLE t ADD COLUMN a_big BIGINT")'),
    ("L203", ["postgresql"],
     'with op.batch_alter_table("t") as b:\n'
     '    b.alter_column("a", existing_type=sa.Integer(), existing_nullable=True, nullable=False)',
     'op.create_check_constraint("ck_t_a_not_null", "t", "a IS NOT NULL", postgresql_not_valid=True)'),
    ("L204", ["postgresql"],
     'op.add_column("t", sa.Column("uid", sa.Uuid(), server_default=sa.text("gen_random_uuid()")))',
     'op.add_column("t", sa.Column("seen", sa.DateTime(), server_default=sa.text("now()")))'),
    ("L205", ["postgresql"], 'op.create_foreign_key("fk_t_u", "t", "u", ["u_id"], ["id"])',
     'op.create_foreign_key("fk_t_u", "t", "u", ["u_id"], ["id"], postgresql_not_valid=True)'),
    ("L205", ["postgresql"], 'op.create_check_constraint("ck_t_a", "t", "a > 0")',
     'op.create_check_constraint("ck_t_a", "t", "a > 0", postgresql_not_valid=True)'),
    ("L206", ["postgresql"], 'op.create_unique_constraint("uq_t_a", "t", ["a"])',
     CONCURRENT_INDEX.replace('"ix_t_a"', '"uq_t_a"').replace('["a"],', '["a"], unique=True,')
     + 'op.execute("ALTER TABLE t ADD CONSTRAINT uq_t_a UNIQUE USING INDEX uq_t_a")'),
    ("L207", ["postgresql", "mysql", "sqlite"],
     'with op.batch_alter_table("t") as b:\n    b.alter_column("a", new_column_name="b", existing_type=sa.Integer())',
     'op.add_column("t", sa.Column("b", sa.Integer(), nullable=True))'),
    ("L207", ["postgresql", "mysql", "sqlite"], 'op.rename_table("t", "t2")',
     'op.create_table("t2", sa.Column("id", sa.Integer(), primary_key=True))'),
    ("L208", ["mysql"],
     'with op.batch_alter_table("t") as b:\n'
     '    b.alter_column("s", existing_type=sa.Enum("a", "b", name="s"), type_=sa.Enum("b", "a", name="s"))',
     'with op.batch_alter_table("t") as b:\n'
     '    b.alter_column("s", existing_type=sa.Enum("a", "b", name="s"), type_=sa.Enum("a", "b", "c", name="s"))'),
    ("L209", ["mysql"], 'op.execute("ALTER TABLE t ADD COLUMN c INT, ALGORITHM=COPY")',
     'op.execute("ALTER TABLE t ADD COLUMN c INT, ALGORITHM=INSTANT")'),
    ("L209", ["mysql"], 'op.create_foreign_key("fk_t_u", "t", "u", ["u_id"], ["id"])',
     'op.create_index("ix_t_u_id", "t", ["u_id"])'),
    ("L210", ["sqlite"], 'with op.batch_alter_table("t") as b:\n    b.drop_column("a")',
     'with op.batch_alter_table("t") as b:\n    b.add_column(sa.Column("c", sa.Integer(), server_default="0"))'),
]


@pytest.mark.parametrize("rule, engines, naive, safe", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_rule_fires_on_the_problem_and_not_on_its_safe_twin(tmp_path: Path, rule: str, engines: list[str],
                                                            naive: str, safe: str) -> None:
    for engine in lock_rules.ENGINES:
        fired = rule in _rules(tmp_path, naive, engine)
        assert fired == (engine in engines), (rule, engine, naive)
        assert rule not in _rules(tmp_path, safe, engine), (rule, engine, safe)


def test_a_varchar_widening_copies_on_mysql_only_when_its_length_bytes_change(tmp_path: Path) -> None:
    widen = ('with op.batch_alter_table("t") as b:\n'
             '    b.alter_column("s", existing_type=sa.String(length={old}), type_=sa.String(length={new}))')
    # utf8mb4: up to 63 characters fit one length byte; 50 -> 200 needs two, so MySQL copies the table.
    assert "L202" in _rules(tmp_path, widen.format(old=50, new=200), "mysql")
    assert "L202" not in _rules(tmp_path, widen.format(old=20, new=60), "mysql")
    assert "L202" not in _rules(tmp_path, widen.format(old=100, new=200), "mysql")
    assert "L202" in _rules(tmp_path, widen.format(old=200, new=100), "mysql")  # narrowing
    # PostgreSQL: reported whatever the lengths (as squawk does; see docs/safety.md, "Locks and rewrites").
    assert "L202" in _rules(tmp_path, widen.format(old=20, new=60), "postgresql")


def test_a_table_created_in_the_same_revision_is_not_locked(tmp_path: Path) -> None:
    body = """
    op.create_table("fresh", sa.Column("id", sa.Integer(), primary_key=True), sa.Column("a", sa.Integer()))
    op.create_index("ix_fresh_a", "fresh", ["a"])
    op.create_unique_constraint("uq_fresh_a", "fresh", ["a"])
    with op.batch_alter_table("fresh") as b:
        b.alter_column("a", existing_type=sa.Integer(), type_=sa.BigInteger())
    op.execute("CREATE INDEX ix_fresh_id ON fresh (id)")
    op.rename_table("fresh", "fresh2")
    op.create_index("ix_fresh2_a", "fresh2", ["a"])
    """
    for engine in lock_rules.ENGINES:
        assert _rules(tmp_path, body, engine) == set(), engine
    # The same on a table that exists: found.
    assert {"L201", "L202", "L206", "L207"} <= _rules(
        tmp_path, body.replace('"fresh", sa.Column', '"other", sa.Column'), "postgresql")


def test_findings_carry_the_line_that_made_them(tmp_path: Path) -> None:
    script = _revision(tmp_path, 'op.add_column("t", sa.Column("c", sa.Integer()))\nop.create_index("ix", "t", ["a"])')
    [finding] = lock_rules.revision_findings(script, "postgresql")
    lines = Path(script.path).read_text().splitlines()
    assert finding.line is not None and 'op.create_index("ix"' in lines[finding.line - 1]
    assert str(finding).startswith("L201 postgresql: creates index ix on t without CONCURRENTLY")
    assert str(finding).endswith("-> " + lock_rules.RULES["L201"][2])


def test_sql_sent_through_the_bind_is_read_too(tmp_path: Path) -> None:
    script = _revision(tmp_path, 'op.get_context()\nop.get_bind().execute(sa.text("CREATE INDEX ix_t_a ON t (a)"))')
    [finding] = lock_rules.revision_findings(script, "postgresql")
    assert finding.rule == "L201" and finding.line == HEADER.count("\n") + 2


def test_a_dialect_guard_is_honoured_per_engine(tmp_path: Path) -> None:
    body = """
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE INDEX CONCURRENTLY ix_t_a ON t (a)")
    else:
        op.create_index("ix_t_a", "t", ["a"])
    """
    assert "L201" not in _rules(tmp_path, body, "postgresql")


def _problems(tmp_path: Path, body: str, silenced: frozenset[str] = frozenset()) -> list[str]:
    script = _revision(tmp_path, body)
    findings = lock_rules.revision_findings(script, "postgresql")
    return [str(p) for p in lock_rules.file_problems(Path(script.path), findings, silenced)]


def test_silencing_one_rule_on_one_line_or_for_the_revision_needs_a_reason(tmp_path: Path) -> None:
    naive = 'op.create_index("ix_t_a", "t", ["a"])'
    assert any(" L201 postgresql: " in p for p in _problems(tmp_path, naive))
    # One rule on one line, with a reason: quiet.
    assert _problems(tmp_path, naive + "  # check: ignore[L201] small table, 200 rows") == []
    # Another rule's silence does not cover it.
    assert any(" L201 " in p for p in _problems(tmp_path, naive + "  # check: ignore[L202] small table"))
    # On another line: not covered either.
    other_line = "# check: ignore[L201] small table\nop.get_context()\n" + naive
    assert any(" L201 " in p for p in _problems(tmp_path, other_line))
    # For the whole revision, with a reason.
    assert _problems(tmp_path, "# check: ignore-file[L201] built at night\n" + naive + "\n" + naive) == []
    # Without a reason: the silence itself is reported (L200), on its own line.
    [problem] = _problems(tmp_path, naive + "  # check: ignore[L201]")
    assert ": L200: silences L201 without a reason" in problem and f":{HEADER.count(chr(10)) + 1}:" in problem
    # The SILENCED_CHECKS setting silences a rule everywhere.
    assert _problems(tmp_path, naive, frozenset({"L201"})) == []


def test_check_locks_prints_file_line_rule_engine_and_the_safe_way(tmp_path: Path) -> None:
    copy = fixture_copy(tmp_path)
    path = copy.add("0009", "0008", upgrade='op.create_index("ix_tasks_state", "tasks", ["state"])',
                    downgrade='op.drop_index("ix_tasks_state", table_name="tasks")')
    line = path.read_text().splitlines().index('    op.create_index("ix_tasks_state", "tasks", ["state"])') + 1
    result = copy.manage("check", "--locks", in_process=True)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].endswith(f"{path.name}:{line}: L201 postgresql: creates index ix_tasks_state on tasks "
                             "without CONCURRENTLY: blocks writes to tasks for the whole build -> "
                             + lock_rules.RULES["L201"][2]), lines
    assert lines[-1] == "System check identified 1 issue (warnings only)."
    # Plain check: the same line, as a warning that does not fail it. (Guarded to PostgreSQL, so the models,
    # compared on a scratch SQLite, still match the history.)
    path.write_text(path.read_text().replace(
        '    op.create_index("ix_tasks_state"',
        '    if op.get_bind().dialect.name == "postgresql":\n        op.create_index("ix_tasks_state"'))
    plain = copy.manage("check", in_process=True)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert f"{path.name}:{line + 1}: L201 postgresql: creates index ix_tasks_state" in plain.stdout, plain.stdout
    assert plain.stdout.strip().endswith("System check identified 1 issue (warnings only).")


def test_plan_marks_locks_for_the_plans_engine(tmp_path: Path, db_url: str) -> None:
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", upgrade='op.create_index("ix_tasks_state", "tasks", ["state"])\n'
             'with op.batch_alter_table("tasks") as b:\n    b.drop_column("details")',
             downgrade='op.drop_index("ix_tasks_state", table_name="tasks")')
    assert copy.manage("migrate", "0008", db_url=db_url, in_process=True).returncode == 0
    result = copy.manage("migrate", "--plan", db_url=db_url, in_process=True)
    assert result.returncode == 0, result.stdout + result.stderr
    marks = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("LOCKS:")]
    engine = db_url.split(":")[0].split("+")[0]
    expected = {"postgresql": ["L201 postgresql"], "mysql": [], "sqlite": ["L210 sqlite"]}[engine]
    assert [m.split(":")[1].strip() for m in marks] == expected, result.stdout


def test_squawk_findings_on_shared_rules_are_all_found(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    import lock_peer  # bench/lock_peer.py: the same comparison bench/RESULTS.md reports

    assert shutil.which("squawk", path=lock_peer.squawk_dir()), "squawk-cli is in the test extras"
    result = lock_peer.compare(tmp_path, revisions=24)
    assert result["squawk_flagged"] > 0 and result["recall"] == 1.0, result
    # Per rule, the one difference: squawk also calls ADD CONSTRAINT ... UNIQUE "missing NOT VALID" (L205),
    # which PostgreSQL does not have for UNIQUE; ours says L206 on that revision.
    kinds = {row["revision"]: row["kind"] for row in result["rows"]}
    assert all(rule == "L205" and kinds[rev] == "unique" for rev, rule in result["missed_by_ours"]), result
    assert result["only_ours"] == [], result


def test_findings_are_kept_per_file_text_and_a_changed_file_is_read_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from project.core.conf import load_settings

    copy = fixture_copy(tmp_path)
    path = copy.add("0009", "0008", upgrade='op.create_index("ix_tasks_state", "tasks", ["state"])',
                    downgrade='op.drop_index("ix_tasks_state", table_name="tasks")')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(lock_rules, "LOCKS_CACHE", tmp_path / "locks.json")
    settings = load_settings(copy.module)
    [first] = [str(p) for p in lock_rules.lock_problems(settings)]
    assert " L201 postgresql: creates index ix_tasks_state" in first
    # The second run reads the cache: an entry edited there is what comes out for the unchanged file.
    entries = json.loads(lock_rules.LOCKS_CACHE.read_text())  # type: ignore[union-attr]
    for findings in entries.values():
        for finding in findings:
            finding[2] = finding[2].replace("creates index", "CACHED creates index")
    lock_rules.LOCKS_CACHE.write_text(json.dumps(entries))  # type: ignore[union-attr]
    again = [str(p) for p in lock_rules.lock_problems(settings)]
    assert again == [first.replace("creates index", "CACHED creates index")]
    # A changed file is recorded again.
    path.write_text(path.read_text().replace('["state"])', '["state"], postgresql_concurrently=True)'))
    assert lock_rules.lock_problems(settings) == []


def test_plain_check_lints_only_the_revisions_after_the_baseline(tmp_path: Path) -> None:
    """LOCK_LINT_AFTER: the revisions up to it are deployed long since, so plain `check` stops repeating their
    warnings; `check --locks` still shows every revision."""
    copy = fixture_copy(tmp_path)
    for rev, down, column in (("0009", "0008", "state"), ("0010", "0009", "title"), ("0011", "0010", "details")):
        # Guarded to PostgreSQL, so the models, compared on a scratch SQLite, still match the history.
        copy.add(rev, down, upgrade=f'if op.get_bind().dialect.name == "postgresql":\n'
                                    f'    op.create_index("ix_{rev}", "tasks", ["{column}"])',
                 downgrade=f'if op.get_bind().dialect.name == "postgresql":\n'
                           f'    op.drop_index("ix_{rev}", table_name="tasks")')

    def warnings(*args: str) -> list[str]:
        result = copy.manage("check", *args, in_process=True)
        assert result.returncode == 0, result.stdout + result.stderr
        return [line for line in result.stdout.splitlines() if " L201 postgresql: " in line]

    assert len(warnings()) == 3
    settings_file = Path(copy.pythonpath) / f"{copy.module}.py"
    settings_file.write_text(settings_file.read_text() + 'LOCK_LINT_AFTER = "0010"\n')
    [after] = warnings()
    assert "0011_test.py" in after and "ix_0011" in after
    assert len(warnings("--locks")) == 3

    settings_file.write_text(settings_file.read_text() + 'LOCK_LINT_AFTER = "0099"\n')
    result = copy.manage("check", in_process=True)
    assert result.returncode == 1
    assert "LOCK_LINT_AFTER = '0099' names no revision: set it to the revision up to which the history is " \
           "deployed everywhere" in result.stdout, result.stdout
