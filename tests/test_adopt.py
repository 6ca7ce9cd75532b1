"""Adopting an existing database: `inspectdb`, then `makemigrations` on an empty history, then
`migrate --fake-initial` (docs/adopt.md).

On each engine a database is built by hand with raw DDL (typed columns, a foreign key, an index, a unique
constraint, defaults). inspectdb writes models that import and hold its tables; makemigrations writes 0001 from
them in a copy of the fixture project with its history emptied; `migrate --fake-initial` records 0001 without
running it and applies a later revision for real. The same history then meets databases that differ by one
column type or one missing index: refused in one line naming the difference, with no alembic_version row written.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import run_fixture_manage
from migcopy import fixture_copy, one_clean_line
from servers import table_names

from project.core.bookkeeping import FLEET_TABLE
from project.core.db import create_engine_for
from project.core.history.applied_log import TABLE_NAME

# Each engine's own spelling of the same tables, as a team's hand-made database would have them.
KEY = {"sqlite": "INTEGER NOT NULL PRIMARY KEY", "postgresql": "SERIAL PRIMARY KEY",
       "mysql": "INTEGER NOT NULL AUTO_INCREMENT PRIMARY KEY"}


def legacy_ddl(dialect: str, reference_type: str = "VARCHAR(40)", index: bool = True) -> list[str]:
    statements = [
        f"CREATE TABLE customers (id {KEY[dialect]}, email VARCHAR(255) NOT NULL, name VARCHAR(100), "
        "credit NUMERIC(10, 2) NOT NULL DEFAULT 0, CONSTRAINT uq_customers_email UNIQUE (email))",
        f"CREATE TABLE orders (id {KEY[dialect]}, customer_id INTEGER NOT NULL, "
        f"reference {reference_type} NOT NULL, status VARCHAR(20) NOT NULL DEFAULT 'new', placed_on DATE, "
        "notes TEXT, CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id))",
    ]
    if index:
        statements.append("CREATE INDEX ix_orders_reference ON orders (reference)")
    return statements


def build(db_url: str, statements: list[str]) -> None:
    """The database emptied (the tool's table too), then built with `statements`."""
    engine = create_engine_for(db_url)
    try:
        with engine.begin() as connection:
            for table in ("alembic_version", "orders", "customers"):
                connection.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
            for statement in statements:
                connection.execute(sa.text(statement))
    finally:
        engine.dispose()


def recorded(db_url: str) -> list[str] | None:
    """alembic_version's rows, or None when the table does not exist."""
    engine = create_engine_for(db_url)
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table("alembic_version"):
                return None
            return [row[0] for row in connection.execute(sa.text("SELECT version_num FROM alembic_version"))]
    finally:
        engine.dispose()


def has_log(db_url: str) -> bool:
    return TABLE_NAME in table_names(db_url)


def _ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return result.stdout


def test_inspectdb_makemigrations_fake_initial(db_url: str, tmp_path: Path) -> None:
    dialect = sa.make_url(db_url).get_backend_name()
    password = sa.make_url(db_url).password
    build(db_url, legacy_ddl(dialect))
    copy = fixture_copy(tmp_path)
    for path in copy.versions.glob("*.py"):
        path.unlink()

    # inspectdb: stdout by default, table names to limit it, --output FILE, never over a file without --force.
    printed = _ok(copy.manage("inspectdb", "customers", db_url=db_url, in_process=True))
    assert "class Customers(Base):" in printed and "class Orders(" not in printed
    assert "alembic_version" not in printed and (not password or password not in printed)
    unknown = copy.manage("inspectdb", "nope", db_url=db_url, in_process=True)
    assert "No table named nope" in one_clean_line(unknown, password or "")

    models = tmp_path / "legacy_models.py"
    models.write_text("# mine\n")
    refused = copy.manage("inspectdb", "--output", str(models), db_url=db_url, in_process=True)
    assert "--force" in one_clean_line(refused) and models.read_text() == "# mine\n"
    wrote = _ok(copy.manage("inspectdb", "--output", str(models), "--force", db_url=db_url, in_process=True))
    assert "Wrote models for 2 table(s)" in wrote and (not password or password not in wrote)
    imported = subprocess.run([sys.executable, "-c", "import legacy_models as m; "
                               "print(sorted(m.Base.metadata.tables))"],
                              cwd=tmp_path, capture_output=True, text=True, check=False)
    assert imported.stdout.split() == ["['customers',", "'orders']"], imported.stderr

    # makemigrations on the empty history writes 0001 from those models; a later revision follows it.
    settings_file = tmp_path / f"{copy.module}.py"
    settings_file.write_text(settings_file.read_text() + 'TARGET_METADATA = "legacy_models:Base.metadata"\n')
    [first] = re.findall(r"  - (0001_[0-9a-f]{6}) init",
                         _ok(copy.manage("makemigrations", "-m", "init", db_url=db_url, in_process=True)))
    text = models.read_text()
    notes = text.index("\n", text.index("    notes: Mapped"))
    models.write_text("import sqlalchemy as sa\n" + text[:notes]
                      + "\n    shipped: Mapped[int | None] = mapped_column(sa.Integer)" + text[notes:])
    [second] = re.findall(r"  - (0002_[0-9a-f]{6}) orders shipped",
                          _ok(copy.manage("makemigrations", "-m", "orders shipped", db_url=db_url, in_process=True)))

    # Without --fake-initial, 0001 would run CREATE TABLE on existing tables: refused before it runs, with the way in.
    plain = copy.manage("migrate", db_url=db_url, in_process=True)
    line = one_clean_line(plain, password or "")
    assert line.startswith(f"CommandError: The database already has tables that {first} creates (customers, orders) "
                           "but no migration applied:") and "`manage.py migrate --fake-initial`" in line, line
    assert plain.returncode == 1 and recorded(db_url) is None and not has_log(db_url)
    adopted = _ok(copy.manage("migrate", "--fake-initial", db_url=db_url, in_process=True))
    assert f"Faked {first}" in adopted
    assert f"Applying {second} orders shipped... OK" in adopted
    assert recorded(db_url) == [second]
    checked = _ok(copy.manage("check", "--database", db_url=db_url, in_process=True))
    assert checked.strip() == "System check identified no issues."
    # Managed now: nothing to fake.
    again = _ok(copy.manage("migrate", "--fake-initial", db_url=db_url, in_process=True))
    assert "Faked" not in again and "No migrations to apply." in again

    # The same history against databases that are not exactly what 0001 creates: refused, nothing written.
    for statements, difference in [
        (legacy_ddl(dialect, reference_type="INTEGER"),
         "column orders.reference is a integer column, expected string"),
        (legacy_ddl(dialect, index=False), "index or unique constraint ix_orders_reference on orders is missing"),
    ]:
        build(db_url, statements)
        result = copy.manage("migrate", "--fake-initial", db_url=db_url, in_process=True)
        line = one_clean_line(result, password or "")
        assert line.startswith("CommandError: --fake-initial refused:") and "1 difference(s)" in line, line
        assert difference in line
        assert recorded(db_url) is None


def test_fake_initial_on_an_empty_database_migrates_for_real(tmp_path: Path) -> None:
    """Nothing to fake on an empty database, nor on one holding only tables the history does not create."""
    copy = fixture_copy(tmp_path)
    for name, statements in [("empty", []), ("shared", [ORDERS])]:
        db_url = f"sqlite:///{tmp_path / name}.db"
        build(db_url, statements)
        migrated = _ok(copy.manage("migrate", "--fake-initial", db_url=db_url, in_process=True))
        assert "Faked" not in migrated and "Applying 0001" in migrated and "Applying 0008" in migrated
        assert recorded(db_url) == ["0008"] and {"projects", "tasks"} < table_names(db_url)


ORDERS = "CREATE TABLE orders (id INTEGER NOT NULL PRIMARY KEY, reference VARCHAR(40))"  # not the history's


def test_plain_migrate_on_tables_the_first_revision_creates(db_url: str, tmp_path: Path) -> None:
    """A database sharing its server with other tables just migrates; one already holding a table that 0001
    creates (made by hand, no alembic_version) is refused before anything runs, naming it and --fake-initial."""
    copy = fixture_copy(tmp_path)
    build(db_url, [ORDERS])
    migrated = _ok(copy.manage("migrate", db_url=db_url, in_process=True))
    assert "Applying 0001" in migrated and "Applying 0008" in migrated
    assert recorded(db_url) == ["0008"]
    assert {"orders", "projects", "tasks"} <= table_names(db_url)

    build(db_url, [f"DROP TABLE IF EXISTS {TABLE_NAME}", f"DROP TABLE IF EXISTS {FLEET_TABLE}",
                   "DROP TABLE IF EXISTS tasks", "DROP TABLE IF EXISTS projects",
                   "CREATE TABLE projects (id INTEGER NOT NULL PRIMARY KEY)", ORDERS])
    refused = copy.manage("migrate", db_url=db_url, in_process=True)
    line = one_clean_line(refused, sa.make_url(db_url).password or "")
    assert refused.returncode == 1 and "already has tables that 0001 creates (projects) but no migration" in line
    assert "orders" not in line and "Nothing was applied." in line, line
    for option in ("--plan", "--check"):  # they show what migrate would do: the same refusal
        previewed = copy.manage("migrate", option, db_url=db_url, in_process=True)
        assert previewed.returncode == 1 and one_clean_line(previewed, sa.make_url(db_url).password or "") == line
    assert recorded(db_url) is None and table_names(db_url) == {"orders", "projects"}


@pytest.mark.parametrize("db_url", ["mysql"], indirect=True)
def test_a_first_revision_that_failed_half_way_is_not_an_adoption(db_url: str, tmp_path: Path) -> None:
    """MariaDB keeps the tables of a first revision that failed half-way, with no revision recorded: the tool made
    them (its applied log is there), so the next migrate says what failed, not --fake-initial."""
    copy = fixture_copy(tmp_path)
    for path in copy.versions.glob("*.py"):
        path.unlink()
    copy.add("0001", None, upgrade="""
        op.create_table("first_t", sa.Column("id", sa.Integer(), primary_key=True))
        if op.get_bind().dialect.name == "mysql":  # scratch SQLite runs it whole: first_t counts as 0001's
            op.execute(sa.table("no_such_table", sa.column("id")).insert().values(id=1))
        """, downgrade='op.drop_table("first_t")')
    assert copy.manage("migrate", "-v0", db_url=db_url, in_process=True).returncode == 1
    assert recorded(db_url) == [] and "first_t" in table_names(db_url)
    line = one_clean_line(copy.manage("migrate", db_url=db_url, in_process=True), sa.make_url(db_url).password or "")
    assert "0001" in line and "first_t" in line and "--fake-initial" not in line, line


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_first_revision_sqlite_cannot_replay_still_migrates_a_shared_database(db_url: str, tmp_path: Path) -> None:
    """Which tables 0001 creates is read from its replay in scratch SQLite; a PostgreSQL-only first revision cannot
    be replayed there, and a database holding another application's tables must still migrate."""
    copy = fixture_copy(tmp_path)
    for path in copy.versions.glob("*.py"):
        path.unlink()
    copy.add("0001", None, upgrade="""
        op.create_table("first_t", sa.Column("id", sa.Integer(), primary_key=True))
        if op.get_bind().dialect.name == "sqlite":
            op.execute("THIS IS NOT SQL")
        """, downgrade='op.drop_table("first_t")')
    build(db_url, [ORDERS])
    assert "Applying 0001" in _ok(copy.manage("migrate", db_url=db_url, in_process=True))
    assert recorded(db_url) == ["0001"] and {"first_t", "orders"} <= table_names(db_url)


def test_inspectdb_leaves_out_the_tools_table_names(tmp_path: Path) -> None:
    """A database the tool has migrated (or one whose plain migrate failed before adoption) holds
    alembic_version and the applied log: neither becomes a model."""
    copy = fixture_copy(tmp_path)
    db_url = f"sqlite:///{tmp_path / 'migrated.db'}"
    _ok(copy.manage("migrate", db_url=db_url, in_process=True))
    models = _ok(copy.manage("inspectdb", db_url=db_url, in_process=True))
    assert "'projects'" in models and "'tasks'" in models, models
    assert "alembic_version" not in models and "alembic_migration_log" not in models, models


def test_inspectdb_output_folder_must_exist(tmp_path: Path) -> None:
    result = run_fixture_manage("inspectdb", "--output", str(tmp_path / "missing" / "models.py"), in_process=True)
    assert "the folder" in one_clean_line(result) and result.returncode == 1
    assert not (tmp_path / "missing").exists()


def test_fake_initial_needs_a_live_database() -> None:
    result = run_fixture_manage("migrate", "--sql", "--fake-initial", in_process=True)
    assert result.returncode == 2
    assert "cannot be used with --sql" in one_clean_line(result)


# What each engine spells its own way: an enum (PostgreSQL's type, MySQL's ENUM, SQLite's VARCHAR), a boolean
# (MySQL's TINYINT(1)), the current time, a numeric default and a CHECK (PostgreSQL adds casts to it).
TYPED = {
    "postgresql": ["CREATE TYPE kind AS ENUM ('retail', 'wholesale')",
                   "CREATE TABLE shops (id SERIAL PRIMARY KEY, kind kind NOT NULL DEFAULT 'retail', "
                   "active BOOLEAN NOT NULL DEFAULT true, opened TIMESTAMP DEFAULT now(), "
                   "score NUMERIC(5, 2) DEFAULT 1.5, CONSTRAINT ck_score CHECK (score >= 0))"],
    "mysql": ["CREATE TABLE shops (id INTEGER NOT NULL AUTO_INCREMENT PRIMARY KEY, "
              "kind ENUM('retail', 'wholesale') NOT NULL DEFAULT 'retail', active BOOLEAN NOT NULL DEFAULT 1, "
              "opened DATETIME DEFAULT CURRENT_TIMESTAMP, score NUMERIC(5, 2) DEFAULT 1.5, "
              "CONSTRAINT ck_score CHECK (score >= 0))"],
    "sqlite": ["CREATE TABLE shops (id INTEGER NOT NULL PRIMARY KEY, kind VARCHAR(9) NOT NULL DEFAULT 'retail', "
               "active BOOLEAN NOT NULL DEFAULT 1, opened DATETIME DEFAULT CURRENT_TIMESTAMP, "
               "score NUMERIC(5, 2) DEFAULT 1.5, CONSTRAINT ck_score CHECK (score >= 0))"],
}


def test_adopting_enums_booleans_defaults_and_checks(db_url: str, tmp_path: Path) -> None:
    build(db_url, TYPED[sa.make_url(db_url).get_backend_name()])
    copy = fixture_copy(tmp_path)
    for path in copy.versions.glob("*.py"):
        path.unlink()
    _ok(copy.manage("inspectdb", "--output", str(tmp_path / "shop_models.py"), db_url=db_url, in_process=True))
    settings_file = tmp_path / f"{copy.module}.py"
    settings_file.write_text(settings_file.read_text() + 'TARGET_METADATA = "shop_models:Base.metadata"\n')
    # Replays on SQLite: portable types and SQL.
    written = _ok(copy.manage("makemigrations", "-m", "init", db_url=db_url, in_process=True))
    [first] = re.findall(r"  - (0001_[0-9a-f]{6}) init", written)
    assert f"Faked {first}" in _ok(copy.manage("migrate", "--fake-initial", db_url=db_url, in_process=True))
    assert recorded(db_url) == [first]


def test_fake_initial_leaves_another_applications_tables_alone(db_url: str, tmp_path: Path) -> None:
    """--fake-initial compares the tables the first revision creates, column by column, and no others: a database
    it shares with another application's tables is adopted, and those tables are left as they were."""
    copy = fixture_copy(tmp_path)
    build(db_url, [f"DROP TABLE IF EXISTS {TABLE_NAME}", "DROP TABLE IF EXISTS tasks", "DROP TABLE IF EXISTS projects"])
    # The tables, as 0001 builds them.
    assert copy.manage("migrate", "0001", "-v0", db_url=db_url, in_process=True).returncode == 0
    build(db_url, [f"DROP TABLE {TABLE_NAME}", ORDERS])  # ... but unmanaged, beside another application's table
    adopted = _ok(copy.manage("migrate", "--fake-initial", db_url=db_url, in_process=True))
    assert "Faked 0001" in adopted and "Applying 0002" in adopted, adopted
    assert recorded(db_url) == ["0008"] and "orders" in table_names(db_url)

    # What 0001 creates is still compared in full: a column of its own missing is refused, orders or not.
    build(db_url, [f"DROP TABLE IF EXISTS {TABLE_NAME}", "DROP TABLE IF EXISTS tasks", "DROP TABLE IF EXISTS projects"])
    assert copy.manage("migrate", "0001", "-v0", db_url=db_url, in_process=True).returncode == 0
    build(db_url, [f"DROP TABLE {TABLE_NAME}", ORDERS, "ALTER TABLE projects ADD COLUMN extra INTEGER"])
    refused = copy.manage("migrate", "--fake-initial", db_url=db_url, in_process=True)
    line = one_clean_line(refused, sa.make_url(db_url).password or "")
    assert line.startswith("CommandError: --fake-initial refused:") and "1 difference(s)" in line, line
    assert "extra" in line and "orders" not in line and recorded(db_url) is None


def test_inspectdb_keeps_every_sqlite_unique_constraint(tmp_path: Path) -> None:
    """SQLAlchemy's SQLite reflection misses an inline UNIQUE on a column whose type has parentheses and drops an
    inline constraint's name; inspectdb reads SQLite's catalogue (PRAGMA index_list) and the table's SQL."""
    copy = fixture_copy(tmp_path)
    db_url = f"sqlite:///{tmp_path / 'legacy.db'}"
    build(db_url, ["CREATE TABLE members (id INTEGER NOT NULL PRIMARY KEY, email VARCHAR(255) UNIQUE, "
                   "code VARCHAR(10) CONSTRAINT uq_members_code UNIQUE, nick TEXT UNIQUE, a INTEGER, b INTEGER, "
                   "UNIQUE (a, b))"])
    models = _ok(copy.manage("inspectdb", "--output", str(tmp_path / "members_models.py"), db_url=db_url,
                             in_process=True))
    assert "Wrote models for 1 table(s)" in models
    metadata = subprocess.run(
        [sys.executable, "-c", "import members_models as m, sqlalchemy as sa; t = m.Base.metadata.tables['members']; "
         "print(sorted((k.name or '', tuple(c.name for c in k.columns)) for k in t.constraints "
         "if isinstance(k, sa.UniqueConstraint)))"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert metadata.stdout.strip() == ("[('', ('a', 'b')), ('', ('email',)), ('', ('nick',)), "
                                       "('uq_members_code', ('code',))]"), metadata.stdout + metadata.stderr
