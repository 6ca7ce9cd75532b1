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
    assert copy.manage("migrate", "0009", db_url=db_url, in_process=True).returncode == 0
    assert _foreign_keys(db_url) == [{"postgresql": "labels_task_id_fkey", "mysql": "labels_ibfk_1"}[
        sa.make_url(db_url).get_backend_name()]]
    result = copy.manage("migrate", db_url=db_url, in_process=True)
    assert result.returncode == 0, result.stderr
    assert version_rows(db_url) == ["0010"] and _foreign_keys(db_url) == []


@pytest.mark.parametrize("db_url", ["mysql", "postgresql"], indirect=True)
def test_a_history_written_under_a_convention_names_it_in_a_setting(db_url: str, tmp_path: Path) -> None:
    copy = _history(tmp_path)
    settings_file = Path(copy.pythonpath) / f"{copy.module}.py"
    settings_file.write_text(settings_file.read_text()
                             + 'MIGRATIONS_NAMING_CONVENTION = "fixture_app.models:NAMING_CONVENTION"\n')
    assert copy.manage("migrate", db_url=db_url, in_process=True).returncode == 0
    assert _foreign_keys(db_url) == ["fk_labels_task_id_tasks"]


# A first revision that copies every table it finds (as some histories snapshot or audit the database).
SHADOW_EVERY_TABLE = """
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    for name in sorted(inspector.get_table_names()):
        columns = [sa.Column(c["name"], sa.String(length=64)) for c in inspector.get_columns(name)]
        op.create_table(f"shadow_{name}", *columns)
    op.create_table("items", sa.Column("id", sa.Integer(), primary_key=True))
"""


def _schema(db_url: str) -> dict[str, list[str]]:
    from project.core.bookkeeping import bookkeeping_tables

    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        inspector = sa.inspect(engine)
        return {name: sorted(c["name"] for c in inspector.get_columns(name))
                for name in sorted(set(inspector.get_table_names()) - bookkeeping_tables())}
    finally:
        engine.dispose()


def _drop_everything(db_url: str) -> None:
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        metadata.drop_all(engine)
    finally:
        engine.dispose()


def _stock_upgrade(versions: Path, work: Path, db_url: str) -> None:
    """The same version files under the env.py `alembic init` writes (the generic template), with plain
    `alembic upgrade head`."""
    import shutil

    from alembic import command
    from alembic.config import Config

    config = Config(str(work / "alembic.ini"))
    command.init(config, str(work / "stock"))
    config = Config(str(work / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))
    for path in versions.glob("*.py"):
        shutil.copy(path, work / "stock" / "versions" / path.name)
    command.upgrade(config, "head")


def test_the_first_revision_sees_the_database_as_under_its_own_env(db_url: str, tmp_path: Path) -> None:
    copy = fixture_copy(tmp_path)
    for path in copy.versions.glob("*.py"):
        path.unlink()
    copy.add("0001", None, upgrade=SHADOW_EVERY_TABLE, message="shadow every table")
    result = copy.manage("migrate", db_url=db_url, in_process=True)
    assert result.returncode == 0, result.stderr
    ours = _schema(db_url)
    _drop_everything(db_url)
    _stock_upgrade(copy.versions, tmp_path, db_url)
    stock = _schema(db_url)
    # Alembic creates alembic_version before the first revision runs, so both copy it; the applied log is created
    # with the first revision's row, after it ran, so the revision does not see it.
    assert "shadow_alembic_version" in stock
    assert ours == stock


def test_the_models_are_loaded_while_the_history_runs(db_url: str, tmp_path: Path) -> None:
    """A revision that uses `sa.orm` without importing sqlalchemy.orm runs under a stock env.py, which imports the
    models (and so the ORM) at its top. TARGET_METADATA's models are imported at run time here too; their naming
    convention still is not applied (test_unnamed_constraints_get_the_database_names)."""
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", message="data migration through the ORM", upgrade="""
        session = sa.orm.Session(bind=op.get_bind())
        session.execute(sa.text("UPDATE projects SET name = 'unnamed' WHERE name IS NULL"))
        session.flush()
    """)
    result = copy.manage("migrate", db_url=db_url, in_process=True)
    assert result.returncode == 0, result.stderr
    assert version_rows(db_url) == ["0009"]
