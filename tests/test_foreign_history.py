"""A history written for plain Alembic, without a naming convention, runs as under its own env.py: constraints its
operations leave unnamed get the database's own names (the models' convention is for autogenerate only), so a later
revision that drops one by that name works. MIGRATIONS_NAMING_CONVENTION gives a history written under a convention."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from migcopy import MigrationsCopy, fixture_copy
from servers import version_rows

CREATE = """
    op.create_table(
        "labels",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("task_id", sa.Integer(), sa.ForeignKey("tasks.id")),
    )
"""
# What such a history does next: drop the constraint by the name its database gave it.
DROP_BY_DATABASE_NAME = """
    name = {"postgresql": "labels_task_id_fkey", "mysql": "labels_ibfk_1"}[op.get_bind().dialect.name]
    op.drop_constraint(name, "labels", type_="foreignkey")
"""


def _history(tmp_path: Path) -> MigrationsCopy:
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", upgrade=CREATE, downgrade='op.drop_table("labels")', message="labels")
    return copy


def _foreign_keys(db_url: str) -> list[str | None]:
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        return [fk["name"] for fk in sa.inspect(engine).get_foreign_keys("labels")]
    finally:
        engine.dispose()


@pytest.mark.parametrize("db_url", ["mysql", "postgresql"], indirect=True)
def test_unnamed_constraints_get_the_database_names(db_url: str, tmp_path: Path) -> None:
    copy = _history(tmp_path)
    copy.add("0010", "0009", upgrade=DROP_BY_DATABASE_NAME, message="drop the fk by its database name")
    assert copy.manage("migrate", "0009", db_url=db_url).returncode == 0
    assert _foreign_keys(db_url) == [{"postgresql": "labels_task_id_fkey", "mysql": "labels_ibfk_1"}[
        sa.make_url(db_url).get_backend_name()]]
    result = copy.manage("migrate", db_url=db_url)
    assert result.returncode == 0, result.stderr
    assert version_rows(db_url) == ["0010"] and _foreign_keys(db_url) == []


@pytest.mark.parametrize("db_url", ["mysql", "postgresql"], indirect=True)
def test_a_history_written_under_a_convention_names_it_in_a_setting(db_url: str, tmp_path: Path) -> None:
    copy = _history(tmp_path)
    settings_file = Path(copy.pythonpath) / f"{copy.module}.py"
    settings_file.write_text(settings_file.read_text()
                             + 'MIGRATIONS_NAMING_CONVENTION = "fixture_app.models:NAMING_CONVENTION"\n')
    assert copy.manage("migrate", db_url=db_url).returncode == 0
    assert _foreign_keys(db_url) == ["fk_labels_task_id_tasks"]
