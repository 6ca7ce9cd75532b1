"""The lint fixes the corpus (tests/corpus/) called for, each with its twin: the pattern from a real history stays
silent and runs on every engine; the twin that truly fails still fires, and fails where the rule says."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from migcopy import fixture_copy
from test_corpus import manage

from project.core.inspection.portability import portability_problems
from project.core.inspection.version_files import read_version_files


def _rules(tmp_path: Path, upgrade: str, preamble: str = "") -> list[str]:
    copy = fixture_copy(tmp_path)
    path = copy.add("0009", "0008", upgrade=upgrade)
    if preamble:
        path.write_text(path.read_text().replace("from alembic import op\n", f"from alembic import op\n{preamble}"))
    return sorted(p.rule or "" for p in portability_problems(read_version_files(copy.versions))
                  if p.path == path)


def _migrate(tmp_path: Path, db_url: str, upgrade: str, preamble: str = ""):
    copy = fixture_copy(tmp_path)
    path = copy.add("0009", "0008", upgrade=upgrade)
    if preamble:
        path.write_text(path.read_text().replace("from alembic import op\n", f"from alembic import op\n{preamble}"))
    assert copy.manage("migrate", "0008", db_url=db_url, in_process=True).returncode == 0
    return copy, copy.manage("migrate", db_url=db_url, in_process=True)


def _names(db_url: str) -> list[str]:
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return list(connection.execute(sa.text("SELECT name FROM projects ORDER BY id")).scalars())
    finally:
        engine.dispose()


# P104: optuna's `sa.Enum(TrialState)` takes its type name from the Python enum class.
MOOD_CLASS = "import enum\n\n\nclass Mood(enum.Enum):\n    HAPPY = 1\n    SAD = 2\n"
ENUM_OF_CLASS = ('op.create_table("moods", sa.Column("id", sa.Integer(), primary_key=True), '
                 'sa.Column("mood", sa.Enum(Mood)))')


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_p104_enum_of_a_python_class_is_named(db_url: str, tmp_path: Path) -> None:
    assert _rules(tmp_path / "lint", ENUM_OF_CLASS, MOOD_CLASS) == []
    assert _rules(tmp_path / "twin", ENUM_OF_CLASS.replace("sa.Enum(Mood)", 'sa.Enum("a", "b")')) == ["P104"]
    _, result = _migrate(tmp_path / "run", db_url, ENUM_OF_CLASS, MOOD_CLASS)
    assert result.returncode == 0, result.stdout + result.stderr
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        assert "mood" in [e["name"] for e in sa.inspect(engine).get_enums()]  # the class's name, lowercased
    finally:
        engine.dispose()


# P101: dbos' `INSERT INTO ... VALUES (1)`, `CREATE VIEW ... AS SELECT *`: read alike by the three engines.
PORTABLE = ('op.execute("INSERT INTO projects (slug, name) VALUES (\'c\', \'corpus\')")\n'
            'op.execute("CREATE VIEW project_names AS SELECT name FROM projects")\n'
            'op.execute("DROP VIEW project_names")')
CONCAT = 'op.execute("UPDATE projects SET name = name || \'!\'")'


def test_p101_sql_every_engine_reads_alike_is_silent(db_url: str, tmp_path: Path) -> None:
    assert _rules(tmp_path / "lint", PORTABLE) == []
    _, result = _migrate(tmp_path / "run", db_url, PORTABLE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _names(db_url) == ["corpus"]


@pytest.mark.parametrize("db_url", ["mysql"], indirect=True)
def test_p101_twin_concatenation_fires_and_fails_on_mariadb(db_url: str, tmp_path: Path) -> None:
    """`||` is OR on MySQL/MariaDB: the strict mode refuses to read 'corpus' as a number (without it, name = 0)."""
    assert _rules(tmp_path / "lint", CONCAT) == ["P101"]
    for statement in ('op.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")', 'op.execute("DROP FUNCTION f")',
                      'op.execute("UPDATE projects SET name = now()")'):
        assert _rules(tmp_path / statement[12:20].replace(" ", "_"), statement) == ["P101"]
    _, result = _migrate(tmp_path / "run", db_url, 'op.execute("INSERT INTO projects (slug, name) VALUES '
                                                   '(\'c\', \'corpus\')")\n' + CONCAT)
    assert result.returncode == 1 and "0009" in result.stderr, result.stdout + result.stderr
    assert "Truncated incorrect DECIMAL value: 'corpus'" in result.stderr


# P110: keystone's `Table(..., autoload_with=bind)` and `Inspector.from_engine(bind)` read the database.
# (c88cdce8f248 inspects only after `if bind.engine.name != 'mysql': return`: offline for MySQL it cannot render.)
@pytest.mark.parametrize(("name", "revision", "dialect"), [
    ("keystone", "27e647c0fad4", "postgresql"), ("keystone", "c88cdce8f248", "mysql"),
    ("optuna", "v2.4.0.a", "postgresql"), ("optuna", "v3.0.0.a", "postgresql")])
def test_p110_revisions_really_cannot_render_offline(name: str, revision: str, dialect: str) -> None:
    result = manage(name, "sqlmigrate", revision, "--dialect", dialect)
    assert result.returncode == 1 and f"Cannot render revision {revision}" in result.stderr, result.stderr


def test_p110_fires_on_autoload_and_inspector(tmp_path: Path) -> None:
    autoload = 'bind = op.get_bind()\nt = sa.Table("projects", sa.MetaData(), autoload_with=bind)'
    inspector = 'bind = op.get_bind()\nsa.engine.reflection.Inspector.from_engine(bind).get_indexes("projects")'
    assert _rules(tmp_path / "a", autoload) == ["P110"]
    assert _rules(tmp_path / "b", inspector) == ["P110"]
    assert _rules(tmp_path / "c", 't = sa.Table("projects", sa.MetaData(), sa.Column("id", sa.Integer))') == []


# P105: dbos' PostgreSQL casts in server defaults fail on the other engines, as the rule says.
@pytest.mark.parametrize("db_url", ["sqlite", "mysql"], indirect=True)
def test_p105_postgresql_cast_default_fails_elsewhere(db_url: str, tmp_path: Path) -> None:
    upgrade = 'op.add_column("projects", sa.Column("priority", sa.Integer(), server_default=sa.text("\'0\'::int")))'
    assert _rules(tmp_path / "lint", upgrade) == ["P105"]
    _, result = _migrate(tmp_path / "run", db_url, upgrade)
    assert result.returncode == 1 and "0009" in result.stderr, result.stdout + result.stderr


def test_check_without_models_warns_instead_of_failing(tmp_path: Path) -> None:
    copy = fixture_copy(tmp_path)
    settings_file = Path(copy.pythonpath) / f"{copy.module}.py"
    settings_file.write_text(settings_file.read_text() + "TARGET_METADATA = None\n")
    result = copy.manage("check", in_process=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning: models: not compared with the migrations: TARGET_METADATA is not set" in result.stdout


# P106: an identifier past 64 characters, which MariaDB rejects (PostgreSQL would silently cut it at 63).
@pytest.mark.parametrize("db_url", ["mysql"], indirect=True)
def test_p106_long_identifier_fails_on_mariadb(db_url: str, tmp_path: Path) -> None:
    upgrade = f'op.create_index("ix_{"x" * 70}", "projects", ["name"])'
    assert _rules(tmp_path / "lint", upgrade) == ["P106"]
    assert _rules(tmp_path / "twin", 'op.create_index("ix_projects_name", "projects", ["name"])') == []
    _, result = _migrate(tmp_path / "run", db_url, upgrade)
    assert result.returncode == 1 and "0009" in result.stderr and "too long" in result.stderr, result.stderr
