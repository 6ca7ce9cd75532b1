"""The portability lint: each rule fires on a revision that has the problem and stays silent on its safe twin;
dialect guards are recognised in their common spellings; rules are silenced by id; and the quirk each rule
claims to catch really fails on its engine (a hand-written revision run on the real server)."""

from __future__ import annotations

from pathlib import Path

import pytest
from migcopy import fixture_copy

from project.core.inspection.portability import portability_problems
from project.core.inspection.problem import Problem
from project.core.inspection.version_files import read_version_files


def _lint(tmp_path: Path, upgrade: str, downgrade: str = "op.get_context()", **extra: str) -> list[Problem]:
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", upgrade=upgrade, downgrade=downgrade)
    for name, text in extra.items():
        (copy.versions / name).write_text(text)
    return [p for p in portability_problems(read_version_files(copy.versions))
            if p.path is not None and p.path.name == "0009_test.py"]


def _rules(problems: list[Problem]) -> list[str]:
    return sorted(p.rule or "" for p in problems)


FIRES_AND_TWIN = {
    "P101": ('op.execute("UPDATE projects SET name = name || \'!\'")',
             'op.execute(sa.table("projects", sa.column("name")).update().values(name="x"))'),
    "P102": ('op.alter_column("projects", "name", existing_type=sa.String(200), nullable=False)',
             'with op.batch_alter_table("projects") as batch_op:\n'
             '    batch_op.alter_column("name", existing_type=sa.String(200), nullable=False)'),
    "P103": ('op.add_column("projects", sa.Column("nick", sa.String()))',
             'op.add_column("projects", sa.Column("nick", sa.String(40)))'),
    "P104": ('op.add_column("projects", sa.Column("mood", sa.Enum("a", "b")))',
             'op.add_column("projects", sa.Column("mood", sa.Enum("a", "b", name="mood")))'),
    "P105": ('op.add_column("tasks", sa.Column("at", sa.DateTime(), server_default=sa.text("now()")))',
             'op.add_column("tasks", sa.Column("at", sa.DateTime(), server_default=sa.text("(CURRENT_TIMESTAMP)")))'),
    "P106": ('op.create_index("ix_' + "x" * 70 + '", "projects", ["name"])',
             'op.create_index("ix_projects_name_short", "projects", ["name"])'),
    "P108": ('with op.batch_alter_table("projects") as batch_op:\n    batch_op.alter_column("name", nullable=False)',
             'with op.batch_alter_table("projects") as batch_op:\n'
             '    batch_op.alter_column("name", existing_type=sa.String(200), nullable=False)'),
    "P109": ('with op.batch_alter_table("tasks") as batch_op:\n    batch_op.drop_constraint("tasks_project_id_fkey")',
             'with op.batch_alter_table("tasks") as batch_op:\n'
             '    batch_op.drop_constraint("fk_tasks_project_id_projects", type_="foreignkey")'),
    "P110": ('n = op.get_bind().execute(sa.text("SELECT count(*) FROM projects")).scalar()',
             'op.get_bind().execute(sa.text("UPDATE projects SET name = name"))'),
    "P111": ('t = sa.table("tasks", sa.column("state", sa.String(10)))\nop.execute(t.update().values(state="done"))',
             't = sa.table("tasks", sa.column("state", sa.Enum("open", "done", name="task_state")))\n'
             'op.execute(t.update().values(state="done"))'),
    "P113": ('op.create_index("ix_tasks_project_id", "tasks", ["project_id"])\n'
             'op.drop_index("ix_tasks_project_id", table_name="tasks")',
             'op.create_index("ix_tasks_project_id", "tasks", ["project_id"])\n'
             'with op.batch_alter_table("tasks") as batch_op:\n'
             '    batch_op.drop_constraint("fk_tasks_project_id_projects", type_="foreignkey")\n'
             '    batch_op.drop_index("ix_tasks_project_id")\n'
             '    batch_op.create_foreign_key("fk_tasks_project_id_projects", "projects", ["project_id"], ["id"])'),
}


@pytest.mark.parametrize("rule", sorted(FIRES_AND_TWIN))
def test_rule_fires_and_its_safe_twin_is_silent(tmp_path: Path, rule: str) -> None:
    bad, good = FIRES_AND_TWIN[rule]
    fired = _lint(tmp_path / "bad", bad)
    assert rule in _rules(fired), fired
    assert all(f"[{rule}]" in str(p) for p in fired if p.rule == rule)
    assert _lint(tmp_path / "good", good) == [], good


def test_empty_and_missing_downgrade(tmp_path: Path) -> None:
    assert _rules(_lint(tmp_path / "a", "op.get_context()", downgrade="pass")) == ["P107"]
    assert _lint(tmp_path / "b", "op.get_context()", downgrade='raise NotImplementedError("one way")') == []


@pytest.mark.parametrize("guard", [
    'if op.get_bind().dialect.name == "postgresql":\n    {stmt}',
    'if op.get_bind().engine.name == "mysql":\n    {stmt}',
    'if context.get_context().dialect.name != "sqlite":\n    {stmt}',
    'bind = op.get_bind()\nif bind.dialect.name in ("postgresql", "mysql"):\n    {stmt}',
    'dialect_name = op.get_bind().dialect.name\nif dialect_name == "sqlite":\n    return\n{stmt}',
    'if op.get_bind().dialect.name == "sqlite":\n    op.get_context()\n    return\n{stmt}',
])
def test_dialect_guards_in_their_common_forms(tmp_path: Path, guard: str) -> None:
    stmt = 'op.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")'
    upgrade = "from alembic import context\n" + guard.format(stmt=stmt)
    assert _lint(tmp_path, upgrade) == []


def test_helper_called_only_under_a_guard(tmp_path: Path) -> None:
    helper = 'def _pg_only():\n    op.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")\n\n\n'
    copy = fixture_copy(tmp_path)
    path = copy.add("0009", "0008", upgrade='if op.get_bind().dialect.name == "postgresql":\n    _pg_only()')
    path.write_text(path.read_text().replace("def upgrade()", helper + "def upgrade()"))
    assert [p for p in portability_problems(read_version_files(copy.versions))
            if p.path == path] == []
    # Called once without the guard: the helper's raw SQL is reported.
    path.write_text(path.read_text().replace('if op.get_bind().dialect.name == "postgresql":\n        _pg_only()',
                                             "_pg_only()"))
    assert _rules([p for p in portability_problems(read_version_files(copy.versions))
                   if p.path == path]) == ["P101"]


def test_no_false_problems_that_real_histories_showed(tmp_path: Path) -> None:
    upgrade = (
        'op.drop_column("tasks", "legacy_flag")\n'  # SQLite >= 3.35 drops columns
        'with op.batch_alter_table("projects") as batch_op:\n'
        '    batch_op.alter_column("name", existing_type=sa.String(), type_=sa.String(200))\n'  # describes only
    )
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", upgrade=upgrade)
    (copy.versions / "__init__.py").write_text("")
    problems = portability_problems(read_version_files(copy.versions))
    assert problems == [], [str(p) for p in problems]


def test_silencing_by_line_file_and_setting(tmp_path: Path) -> None:
    raw = 'op.execute("UPDATE projects SET name = name || \'!\'")'
    assert _rules(_lint(tmp_path / "a", raw)) == ["P101"]
    assert _lint(tmp_path / "b", raw + "  # check: ignore[P101] reviewed") == []
    assert _rules(_lint(tmp_path / "c", raw + "  # check: ignore[P103]")) == ["P101"]  # another rule stays
    copy = fixture_copy(tmp_path / "d")
    path = copy.add("0009", "0008", upgrade=raw + '\nop.add_column("projects", sa.Column("n", sa.String()))')
    path.write_text("# check: ignore-file[P101, P103]: reviewed\n" + path.read_text())
    assert portability_problems(read_version_files(copy.versions)) == []
    copy = fixture_copy(tmp_path / "e")
    copy.add("0009", "0008", upgrade=raw)
    files = read_version_files(copy.versions)
    assert _rules(portability_problems(files)) == ["P101"]
    assert portability_problems(files, {"P101"}) == []


def test_warnings_show_but_do_not_fail_check(tmp_path: Path) -> None:
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", upgrade='n = op.get_bind().execute(sa.text("SELECT count(*) FROM projects")).scalar()')
    result = copy.manage("check", in_process=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning: reads the database through op.get_bind()" in result.stdout
    assert "[P110]" in result.stdout and "(warnings only)" in result.stdout


# --- the quirks are real: the flagged revision fails on its engine, its twin passes ----------------------

ENGINE_QUIRKS = {
    # rule: (engine whose server rejects it, the flagged upgrade)
    "P103": ("mysql", 'op.add_column("projects", sa.Column("nick", sa.String()))'),
    "P104": ("postgresql", 'op.add_column("projects", sa.Column("mood", sa.Enum("a", "b")))'),
    "P108": ("mysql", 'with op.batch_alter_table("projects") as batch_op:\n    batch_op.alter_column("name", '
                      'nullable=False)'),
    "P102": ("sqlite", 'op.alter_column("projects", "name", existing_type=sa.String(200), nullable=False)'),
    "P109": ("mysql", 'with op.batch_alter_table("tasks") as batch_op:\n'
                      '    batch_op.drop_constraint("tasks_project_id_fkey", type_="foreignkey")'),
    "P113": ("mysql", FIRES_AND_TWIN["P113"][0]),
}


@pytest.mark.parametrize(("rule", "db_url"), [(rule, engine) for rule, (engine, _) in sorted(ENGINE_QUIRKS.items())],
                         indirect=["db_url"])
def test_flagged_quirk_really_fails_on_its_engine(rule: str, db_url: str, tmp_path: Path) -> None:
    """Each quirk on the engine that has it (the safe twins are linted above)."""
    _, upgrade = ENGINE_QUIRKS[rule]
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", upgrade=upgrade)
    assert rule in _rules(portability_problems(read_version_files(copy.versions)))
    assert copy.manage("migrate", "0008", db_url=db_url, in_process=True).returncode == 0
    result = copy.manage("migrate", db_url=db_url, in_process=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "0009" in result.stderr


def test_index_drops_a_foreign_key_needs(tmp_path: Path) -> None:
    """P113 follows the history: a downgrade that drops the index its upgrade made for a key (the generated
    downgrade of a table with a foreign key and its indexes dropped them first), a drop once another index
    covers the key, dropping the table instead, and a dialect guard."""
    create = 'op.create_index("ix_tasks_project_id", "tasks", ["project_id"])'
    drop = 'op.drop_index("ix_tasks_project_id", table_name="tasks")'
    fired = _lint(tmp_path / "down", create, drop)
    assert _rules(fired) == ["P113"] and "foreign key on tasks(project_id)" in fired[0].message, fired
    covered = 'op.create_index("ix_tasks_project_id_title", "tasks", ["project_id", "title"])'
    assert _lint(tmp_path / "covered", f"{create}\n{covered}", drop) == []
    key_first = ('with op.batch_alter_table("tasks") as batch_op:\n'
                 '    batch_op.drop_constraint("fk_tasks_project_id_projects", type_="foreignkey")\n'
                 '    batch_op.drop_index("ix_tasks_project_id")')
    assert _lint(tmp_path / "key-first", create, key_first) == []
    guarded = f'if op.get_bind().dialect.name != "mysql":\n    {drop}'
    assert _lint(tmp_path / "guarded", create, guarded) == []
    created_with_key = (
        'op.create_table("loans", sa.Column("id", sa.Integer(), primary_key=True),\n'
        '    sa.Column("task_id", sa.Integer(), sa.ForeignKey("tasks.id")))\n'
        'with op.batch_alter_table("loans") as batch_op:\n'
        '    batch_op.create_index(batch_op.f("ix_loans_task_id"), ["task_id"])')
    fired = _lint(tmp_path / "new", created_with_key,
                  'with op.batch_alter_table("loans") as batch_op:\n'
                  '    batch_op.drop_index(batch_op.f("ix_loans_task_id"))\nop.drop_table("loans")')
    assert _rules(fired) == ["P113"], fired
    assert _lint(tmp_path / "new-ok", created_with_key, 'op.drop_table("loans")') == []
