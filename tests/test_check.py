"""`manage.py check`: graph, models vs migrations, portability lint, live-database drift, deploy.

Run on the fixture application (tests/fixture_app) and copies of its history."""

from __future__ import annotations

import re
import subprocess
import uuid
from pathlib import Path

import sqlalchemy as sa
from conftest import run_fixture_manage, run_manage
from migcopy import fixture_copy

from project.core.db import create_engine_for
from project.core.inspection import version_files
from project.core.inspection.deploy import committed_secret_problems
from project.core.inspection.portability import portability_problems
from project.core.inspection.problem import relative
from project.core.inspection.version_files import read_version_files


def _problems(result) -> list[str]:
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("CommandError: System check identified")
    assert "Traceback" not in result.stdout + result.stderr
    return result.stdout.splitlines()


def _line_of(path: Path, needle: str) -> int:
    text = path.read_text()
    return text[: text.index(needle)].count("\n") + 1


def test_the_fixture_project_is_clean() -> None:
    result = run_fixture_manage("check", in_process=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "System check identified no issues."


def test_graph_problems_and_merge(tmp_path: Path) -> None:
    copy = fixture_copy(tmp_path)
    a = copy.add("0009", "0008", message="branch a")
    copy.add("0010", "0008", message="branch b")
    lines = _problems(copy.manage("check", in_process=True))
    assert lines == ["the history has 2 heads (0009, 0010): run `manage.py makemigrations --merge` to join them"]

    merged = copy.manage("makemigrations", "--merge", in_process=True)
    assert merged.returncode == 0, merged.stderr
    assert "0011" in merged.stdout
    assert copy.manage("check", in_process=True).returncode == 0

    # A revision id used twice, and a down_revision nobody defines: file:line each.
    dup = copy.add("0009", "0008", filename="0009_duplicate.py")
    lost = copy.add("0012", "0077")
    lines = _problems(copy.manage("check", in_process=True))
    at = _line_of(a, "revision =")
    assert any("revision id 0009 is used twice" in line and a.name in line and dup.name in line
               and (f"{a.name}:{at}:" in line or f"{dup.name}:{at}:" in line) for line in lines), lines
    lost_at = f"{lost.name}:{_line_of(lost, 'down_revision =')}: down_revision '0077' is not defined"
    assert any(lost_at in line for line in lines), lines


def test_syntax_error_is_reported_with_file_and_line(tmp_path: Path) -> None:
    copy = fixture_copy(tmp_path)
    bad = copy.add("0009", "0008", upgrade="op.drop_table('tasks'")
    lines = _problems(copy.manage("check", in_process=True))
    assert len(lines) == 1
    assert f"{bad.name}:" in lines[0] and "syntax error" in lines[0]


def test_portability_lint(tmp_path: Path) -> None:
    copy = fixture_copy(tmp_path)
    long_name = "ix_" + "x" * 70
    bad = copy.add("0009", "0008", upgrade=f"""
        op.execute("UPDATE tasks SET title = title || '!'")
        if op.get_bind().dialect.name == "postgresql":
            op.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
        op.add_column("projects", sa.Column("nick", sa.String()))
        op.add_column("projects", sa.Column("mood", sa.Enum("happy", "sad")))
        op.add_column("projects", sa.Column("seen_at", sa.DateTime(), server_default=sa.text("now()")))
        op.add_column("projects", sa.Column("ok_at", sa.DateTime(), server_default=sa.text("(CURRENT_TIMESTAMP)")))
        op.create_index("{long_name}", "projects", ["nick"])
        op.drop_column("projects", "name")
        with op.batch_alter_table("projects") as batch_op:
            batch_op.drop_column("slug")
    """, downgrade="pass")
    problems = [str(p) for p in portability_problems(read_version_files(copy.versions))]
    at = {name: f"{relative(bad)}:{_line_of(bad, name)}: " for name in (
        "op.execute(\"UPDATE", "sa.String()", "sa.Enum(", "now()", long_name, "op.drop_column", "def downgrade")}
    expected_prefixes = [
        at["op.execute(\"UPDATE"] + "op.execute with raw SQL and no dialect guard",
        at["sa.String()"] + "String() without a length",
        at["sa.Enum("] + "Enum without name=",
        at["now()"] + "server_default 'now()' is dialect-specific",
        at[long_name] + f"identifier ix_xxxxxxxxxxxxxxxxx... is {len(long_name)} characters",
        at["def downgrade"] + "downgrade() does nothing",
    ]
    for prefix in expected_prefixes:
        assert sum(p.startswith(prefix) for p in problems) == 1, (prefix, problems)
    # The guarded execute, the batch ops and the bare drop_column (SQLite >= 3.35 drops columns) are fine.
    assert len(problems) == len(expected_prefixes), problems

    # Through the CLI the same lines come out, and the exit status is 1.
    # (models vs migrations runs too, lint problems or not: the new columns are not in the models; and the lock
    # lint's warnings, tests/test_lock_rules.py.)
    lint = [line for line in _problems(copy.manage("check", in_process=True))
            if not line.startswith("models:") and not re.search(r": L2\d\d ", line)]
    assert len(lint) == len(expected_prefixes), lint


def test_models_ahead_of_migrations(tmp_path: Path) -> None:
    copy = fixture_copy(tmp_path)
    next(copy.versions.glob("0008_*.py")).unlink()  # the models no longer have tasks.legacy_flag
    lines = _problems(copy.manage("check", in_process=True))
    assert lines == ["models: the models need 'drop column tasks.legacy_flag', which no migration covers: "
                     "run `manage.py makemigrations`"]


def test_database_drift_on_every_engine(fixture_manage, db_url: str) -> None:
    assert fixture_manage("check", "--database", in_process=True).returncode == 0  # empty database, recorded at zero
    assert fixture_manage("migrate", "0005", "-v0", in_process=True).returncode == 0
    clean = fixture_manage("check", "--database", in_process=True)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert fixture_manage("migrate", "-v0", in_process=True).returncode == 0
    clean = fixture_manage("check", "--database", in_process=True)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    engine = create_engine_for(db_url)
    try:
        with engine.begin() as connection:  # someone altered the database by hand
            connection.execute(sa.text("CREATE TABLE hand_made (id INTEGER PRIMARY KEY)"))
            connection.execute(sa.text("ALTER TABLE tasks ADD COLUMN hotfix INTEGER"))
            tasks = sa.Table("tasks", sa.MetaData(), sa.Column("title", sa.String(200)))
            sa.Index("ix_tasks_title", tasks.c.title).drop(connection)
    finally:
        engine.dispose()
    lines = _problems(fixture_manage("check", "--database", in_process=True))
    assert sorted(lines) == sorted([
        "database at 0008: table hand_made exists but no migration creates it",
        "database at 0008: column tasks.hotfix exists but no migration creates it",
        "database at 0008: index or unique constraint ix_tasks_title on tasks is missing",
    ])
    assert sa.make_url(db_url).password is None or sa.make_url(db_url).password not in "".join(lines)


def test_deploy_checks(tmp_path: Path) -> None:
    missing = _problems(run_manage("check", "--deploy", env={"PROD_DATABASE_URL": ""}, in_process=True))
    assert any(line.startswith("deploy: PROD_DATABASE_URL is not set") for line in missing)

    lite = _problems(run_manage("check", "--deploy", env={"PROD_DATABASE_URL": f"sqlite:///{tmp_path}/p.db"},
                                in_process=True))
    assert any("DATABASE_URL is SQLite" in line for line in lite)

    # Made at run time: a literal here would be a password in a committed file, which is what the check finds.
    secret = f"Pr0d-{uuid.uuid4().hex}"
    url = f"postgresql+psycopg2://app:{secret}@db.example.com:5432/app"
    ok = run_manage("check", "--deploy", env={"PROD_DATABASE_URL": url}, in_process=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert secret not in ok.stdout + ok.stderr

    (tmp_path / "debug_settings.py").write_text("from settings.prod import *  # noqa\nDEBUG = True\n")
    debug = run_manage("check", "--deploy", "--settings=debug_settings",
                       env={"PROD_DATABASE_URL": url, "PYTHONPATH": str(tmp_path)}, in_process=True)
    assert any("DEBUG is on" in line for line in _problems(debug))


def test_passwords_in_committed_files(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "config.py").write_text('URL = "postgresql://app:hunter2real@prod-db.internal/app"\n')
    (tmp_path / ".env.example").write_text("PROD_DATABASE_URL=postgresql://app:PASSWORD@db.example.com/app\n")
    (tmp_path / "local.py").write_text('URL = "mysql+pymysql://app:app@127.0.0.1/app"\n')
    (tmp_path / "notes.txt").write_text("the prod password is S3cret-Prod-Pw\n")
    (tmp_path / "untracked.py").write_text('URL = "postgresql://app:zzzzzz@prod-db.internal/app"\n')
    git("add", "config.py", ".env.example", "local.py", "notes.txt")
    found = [str(p).replace(str(tmp_path) + "/", "") for p in
             committed_secret_problems("S3cret-Prod-Pw", root=tmp_path)]
    assert found == [
        "config.py:1: deploy: a database URL with an inline password is committed: read it from the environment "
        "instead",
        "notes.txt:1: deploy: the production database password is in a committed file",
    ]
    assert not any("S3cret-Prod-Pw" in line or "hunter2real" in line for line in found)


def test_file_facts_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(version_files, "FACTS_CACHE", tmp_path / "facts.json")
    copy = fixture_copy(tmp_path)
    bad = copy.add("0009", "0008", upgrade='op.add_column("projects", sa.Column("nick", sa.String()))')
    first = [str(p) for p in portability_problems(read_version_files(copy.versions))]
    assert len(first) == 1 and "String() without a length" in first[0]

    def no_parsing(*args):
        raise AssertionError("an unchanged file was parsed again")

    monkeypatch.setattr(version_files, "_analyse", no_parsing)
    files = read_version_files(copy.versions)
    assert [str(p) for p in portability_problems(files)] == first
    assert [f.revision for f in files] == [f"000{i}" for i in range(1, 10)]

    monkeypatch.undo()
    monkeypatch.setattr(version_files, "FACTS_CACHE", tmp_path / "facts.json")
    bad.write_text(bad.read_text().replace("sa.String()", "sa.String(20)"))  # fixed: the cache must not answer
    assert portability_problems(read_version_files(copy.versions)) == []
