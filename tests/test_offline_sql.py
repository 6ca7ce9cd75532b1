"""Offline SQL (`sqlmigrate`, `migrate --sql`) is exact on every engine.

Each script is generated with settings whose database cannot be reached (wrong password, a host that
does not resolve, a SQLite file in a missing directory), applied with the engine's own command-line
client (psql, mariadb, sqlite3) to a fresh database, and compared with `migrate` run online on another.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import FIXTURE_SETTINGS, run_fixture_manage

# Settings that point nowhere: generating SQL must never try them. The fixture application's
# (tests/fixture_app: projects and tasks), one flavour per engine as a project has.
UNREACHABLE = {
    "postgresql": ("fixture_app.settings.prod", {"PROD_DATABASE_URL": "postgresql+psycopg2://u:wrongpw@db.invalid:5432/x"}),
    "mysql": ("fixture_app.settings.test", {"TEST_DATABASE_URL": "mysql+pymysql://u:wrongpw@db.invalid:3306/x?charset=utf8mb4"}),
    "sqlite": ("fixture_app.settings.dev", {"DEV_DATABASE_URL": "sqlite:////nonexistent-dir-for-offline-sql/sub/app.db"}),
}


@dataclass
class Engine:
    """One engine under test: fresh databases, the native client, and SQL generated offline."""

    kind: str
    new_database: Callable[[], str]  # URL of a fresh empty database
    client: Callable[[str, str], subprocess.CompletedProcess]  # (url, script text) -> result

    def manage_offline(self, *args: str) -> str:
        """`manage.py ARGS` under the unreachable settings; returns stdout, asserts success."""
        settings, env = UNREACHABLE[self.kind]
        result = run_fixture_manage(*args, f"--settings={settings}", env=env, in_process=True)
        assert result.returncode == 0, result.stderr
        assert "wrongpw" not in result.stdout + result.stderr
        return result.stdout

    def apply(self, url: str, script: str) -> None:
        result = self.client(url, script)
        assert result.returncode == 0, f"{self.kind} client failed:\n{result.stderr}\n--- script ---\n{script}"


def _psql(server) -> Callable[[str, str], subprocess.CompletedProcess]:
    def run(url: str, script: str) -> subprocess.CompletedProcess:
        database = sa.make_url(url).database
        command = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", server.host, "-p", str(server.port),
                   "-U", server.user, "-d", database]
        return subprocess.run(command, input=script, text=True, capture_output=True, timeout=120,
                              env={**os.environ, "PGPASSWORD": server.password})

    return run


def _mariadb(server) -> Callable[[str, str], subprocess.CompletedProcess]:
    def run(url: str, script: str) -> subprocess.CompletedProcess:
        database = sa.make_url(url).database
        command = ["mariadb", "--protocol=TCP", "-h", server.host, "-P", str(server.port), "-u", server.user,
                   database]
        return subprocess.run(command, input=script, text=True, capture_output=True, timeout=120,
                              env={**os.environ, "MYSQL_PWD": server.password})

    return run


def _sqlite3(url: str, script: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sqlite3", sa.make_url(url).database], input=script, text=True, capture_output=True,
                          timeout=120)


@pytest.fixture(params=["sqlite", "mysql", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        counter = iter(range(1000))
        yield Engine("sqlite", lambda: f"sqlite:///{tmp_path / f'db{next(counter)}.sqlite3'}", _sqlite3)
        return
    server = request.getfixturevalue("pg_server" if request.param == "postgresql" else "mysql_server")
    names: list[str] = []

    def new_database() -> str:
        names.append(f"t_{uuid.uuid4().hex[:12]}")
        return server.create_database(names[-1])

    yield Engine(request.param, new_database, _psql(server) if request.param == "postgresql" else _mariadb(server))
    for name in names:
        try:
            server.drop_database(name)
        except Exception as error:  # cleanup must not mask the test result
            print(f"warning: could not drop {name}: {error}", file=sys.stderr)


def migrate_online(url: str, target: str) -> None:
    result = run_fixture_manage("migrate", target, "--allow-destructive", f"--settings={FIXTURE_SETTINGS}",
                                env={"DEV_DATABASE_URL": url}, in_process=True)
    assert result.returncode == 0, result.stderr


def snapshot(url: str) -> dict:
    """The reflected schema (tables, columns, keys, constraints, indexes, PG enums) and alembic_version."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            tables = {}
            for table in sorted(inspector.get_table_names()):
                tables[table] = {
                    "columns": [
                        (c["name"], str(c["type"]), c["nullable"], c.get("default"))
                        for c in inspector.get_columns(table)
                    ],
                    "pk": tuple(inspector.get_pk_constraint(table)["constrained_columns"]),
                    "fks": sorted(
                        (fk["name"], tuple(fk["constrained_columns"]), fk["referred_table"],
                         tuple(fk["referred_columns"]))
                        for fk in inspector.get_foreign_keys(table)
                    ),
                    "uniques": sorted((u["name"], tuple(u["column_names"]))
                                      for u in inspector.get_unique_constraints(table)),
                    "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                                      for i in inspector.get_indexes(table)),
                }
            enums = inspector.get_enums() if connection.dialect.name == "postgresql" else []
            versions = []
            if "alembic_version" in tables:
                versions = sorted(r[0] for r in connection.exec_driver_sql("SELECT version_num FROM alembic_version"))
            return {"tables": tables, "enums": enums, "versions": versions}
    finally:
        engine.dispose()


def assert_same_database(offline_url: str, online_url: str, expected_versions: list[str]) -> None:
    offline, online = snapshot(offline_url), snapshot(online_url)
    assert offline["versions"] == expected_versions
    assert offline == online


# --- the acceptance tests, on each engine -------------------------------------------------


def test_full_upgrade_script_builds_what_online_migrate_builds(engine: Engine) -> None:
    script = engine.manage_offline("migrate", "--sql", "head")
    assert f"Migration script for {engine.kind}: upgrade base -> 0008" in script
    offline_db, online_db = engine.new_database(), engine.new_database()
    engine.apply(offline_db, script)
    migrate_online(online_db, "head")
    assert_same_database(offline_db, online_db, ["0008"])


def test_incremental_script_from_a_database_at_0004(engine: Engine, tmp_path: Path) -> None:
    output = tmp_path / "migration.sql"
    engine.manage_offline("migrate", "--sql", "head", "--from", "0004", "-o", str(output))
    script = output.read_text()
    assert "upgrade 0004 -> 0008 (4 revision(s))" in script
    offline_db, online_db = engine.new_database(), engine.new_database()
    migrate_online(offline_db, "0004")
    engine.apply(offline_db, script)
    migrate_online(online_db, "head")
    assert_same_database(offline_db, online_db, ["0008"])


def test_downgrade_scripts_match_online_downgrades(engine: Engine) -> None:
    to_zero = engine.manage_offline("migrate", "--sql", "zero", "--from", "head")
    assert "downgrade 0008 -> base" in to_zero
    partial = engine.manage_offline("sqlmigrate", "0004:head", "--backwards")
    offline_db, online_db = engine.new_database(), engine.new_database()
    for url in (offline_db, online_db):
        migrate_online(url, "head")

    engine.apply(offline_db, partial)
    migrate_online(online_db, "0004")
    assert_same_database(offline_db, online_db, ["0004"])

    # The rest of the way with the deploy script: its guard expects head, so bring the database back first.
    migrate_online(offline_db, "head")
    engine.apply(offline_db, to_zero)
    migrate_online(online_db, "zero")
    assert_same_database(offline_db, online_db, [])
    assert set(snapshot(offline_db)["tables"]) == {
        "alembic_version", "alembic_migration_log", "alembic_migration_fleet"}


def test_reapplying_a_script_stops_before_changing_anything(engine: Engine) -> None:
    script = engine.manage_offline("migrate", "--sql", "head")
    incremental = engine.manage_offline("migrate", "--sql", "0008", "--from", "0007")
    url = engine.new_database()
    engine.apply(url, script)
    db = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with db.begin() as connection:
        connection.exec_driver_sql("INSERT INTO projects (id, slug, name) VALUES (1, 'a@example.com', 'A')")
    db.dispose()
    before = snapshot(url)

    for again in (script, incremental):
        result = engine.client(url, again)
        assert result.returncode != 0
        assert ("alembic_version" if engine.kind == "postgresql" else "alembic_version_mismatch") in result.stderr
        assert snapshot(url) == before

    db = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with db.connect() as connection:
        assert connection.exec_driver_sql("SELECT slug FROM projects").scalars().all() == ["a@example.com"]
    db.dispose()


def test_script_after_a_downgrade_to_zero_runs_again(engine: Engine) -> None:
    """Online migrate keeps an empty alembic_version after `migrate zero`; the script copes with it."""
    url = engine.new_database()
    migrate_online(url, "head")
    migrate_online(url, "zero")
    engine.apply(url, engine.manage_offline("migrate", "--sql", "0003"))
    assert snapshot(url)["versions"] == ["0003"]


# --- sqlmigrate ----------------------------------------------------------------------------------


def _statements(review: str) -> list[str]:
    """The statements of `sqlmigrate` output, without comments and transaction control."""
    out = []
    for block in review.split(";\n\n"):
        lines = [line for line in block.strip().splitlines() if not line.startswith("-- ")]
        statement = "\n".join(lines).strip().rstrip(";")
        if statement and statement not in {"BEGIN", "COMMIT"}:
            out.append(statement)
    return out


@pytest.mark.parametrize(
    ("spec", "start", "target", "rebuilt"),
    [("0003", "0002", "0003", "_alembic_tmp_projects"), ("base:head", None, "head", "_alembic_tmp_tasks"),
     ("head:0004", "head", "0004", "_alembic_tmp_projects")],
)
def test_sqlmigrate_sqlite_is_what_online_migrate_executes(
    spec: str, start: str | None, target: str, rebuilt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine as SAEngine

    from project import migrate_database
    from project.core.conf import load_settings
    from project.core.offline import inline_parameters

    result = run_fixture_manage("sqlmigrate", spec, "--dialect", "sqlite", f"--settings={FIXTURE_SETTINGS}",
                                env=UNREACHABLE["sqlite"][1], in_process=True)
    assert result.returncode == 0, result.stderr
    assert rebuilt in result.stdout  # a batch rebuild, rendered without a database
    assert not Path("/nonexistent-dir-for-offline-sql").exists()

    monkeypatch.setenv("DEV_DATABASE_URL", f"sqlite:///{tmp_path / 'real.sqlite3'}")
    settings = load_settings(FIXTURE_SETTINGS)
    if start:
        migrate_database(settings, start)
    executed: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        # The applied log's rows and the fleet's table are migrate's bookkeeping, not the revision's SQL that
        # sqlmigrate reviews.
        if statement.split()[0].upper() in {"CREATE", "INSERT", "UPDATE", "DELETE", "DROP", "ALTER"} \
                and "alembic_migration_log" not in statement and "alembic_migration_fleet" not in statement:
            executed.append(inline_parameters(statement.strip(), parameters))

    event.listen(SAEngine, "before_cursor_execute", record)
    try:
        migrate_database(settings, target)
    finally:
        event.remove(SAEngine, "before_cursor_execute", record)
    assert executed and _statements(result.stdout) == executed


def test_sqlmigrate_all_dialects_side_by_side() -> None:
    result = run_fixture_manage("sqlmigrate", "0008", "--dialect", "all", f"--settings={UNREACHABLE['postgresql'][0]}",
                                env=UNREACHABLE["postgresql"][1], in_process=True)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    headers = [out.index(f"-- ===== {d} =====") for d in ("postgresql", "mysql", "sqlite")]
    assert headers == sorted(headers)
    pg, mysql, sqlite = out[headers[0]:headers[1]], out[headers[1]:headers[2]], out[headers[2]:]
    assert "ALTER TABLE tasks DROP COLUMN legacy_flag" in pg and "BEGIN;" in pg
    assert "ALTER TABLE tasks DROP COLUMN legacy_flag" in mysql and "BEGIN;" not in mysql
    assert "INSERT INTO _alembic_tmp_tasks" in sqlite
    # Each engine's data loss is marked, the SQLite rebuild included (it does not copy legacy_flag).
    for section in (pg, mysql, sqlite):
        assert "-- DESTRUCTIVE: drops column tasks.legacy_flag" in section


def test_sqlmigrate_backwards_and_settings_dialect() -> None:
    result = run_fixture_manage("sqlmigrate", "0004", "--backwards", f"--settings={UNREACHABLE['mysql'][0]}",
                                env=UNREACHABLE["mysql"][1], in_process=True)
    assert result.returncode == 0, result.stderr
    assert "-- Running downgrade 0004 -> 0003" in result.stdout
    assert "ALTER TABLE tasks CHANGE details notes TEXT NULL" in result.stdout


def test_sqlmigrate_unknown_revision_is_one_line() -> None:
    result = run_fixture_manage("sqlmigrate", "nope", "--dialect", "sqlite", in_process=True)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "nope" in result.stderr and "Traceback" not in result.stderr


def test_migrate_sql_never_connects_and_has_a_header() -> None:
    settings, env = UNREACHABLE["postgresql"]
    result = run_fixture_manage("migrate", "--sql", "0006:0008", f"--settings={settings}", env=env, in_process=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("-- Migration script for postgresql: upgrade 0006 -> 0008 (2 revision(s))")
    assert "Generated" in lines[1] and "manage.py migrate --sql" in lines[1]
    assert result.stdout.count("BEGIN;") == 2 and result.stdout.count("RAISE EXCEPTION") == 2


def test_inline_parameters_skips_quoted_text() -> None:
    from project.core.offline import inline_parameters

    statement = "UPDATE t SET a = ?, b = '?', \"c?\" = ? -- ?\nWHERE d = :x"
    assert inline_parameters(statement, ("it's", None)) == (
        "UPDATE t SET a = 'it''s', b = '?', \"c?\" = NULL -- ?\nWHERE d = :x"
    )
    named = inline_parameters("INSERT INTO t VALUES (:a, :b)", {"a": 1, "b": b"\x01"})
    assert named == "INSERT INTO t VALUES (1, X'01')"


def test_sqlmigrate_marks_not_null_alike_on_every_engine(tmp_path: Path) -> None:
    """nullable=False on a column that allowed NULL is marked on each engine's statement: PostgreSQL's SET NOT
    NULL, MySQL's MODIFY (which restates NOT NULL for a column that had it already: not marked then) and
    SQLite's rebuild that copies the column into a NOT NULL one."""
    from migcopy import fixture_copy

    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", message="name required", upgrade="""
        with op.batch_alter_table("projects") as batch_op:
            batch_op.alter_column("name", existing_type=sa.String(200), nullable=False, existing_nullable=True)
            batch_op.alter_column("slug", existing_type=sa.String(255), type_=sa.String(300), existing_nullable=False)
    """, downgrade="""
        with op.batch_alter_table("projects") as batch_op:
            batch_op.alter_column("name", existing_type=sa.String(200), nullable=True, existing_nullable=False)
            batch_op.alter_column("slug", existing_type=sa.String(300), type_=sa.String(255), existing_nullable=False)
    """)
    result = copy.manage("sqlmigrate", "0009", "--dialect", "all", in_process=True)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    headers = [out.index(f"-- ===== {d} =====") for d in ("postgresql", "mysql", "sqlite")]
    pg, mysql, sqlite = out[headers[0]:headers[1]], out[headers[1]:headers[2]], out[headers[2]:]
    marked = "-- DESTRUCTIVE: makes projects.name NOT NULL\n"
    assert marked + "ALTER TABLE projects ALTER COLUMN name SET NOT NULL;" in pg
    assert marked + "ALTER TABLE projects MODIFY name VARCHAR(200) NOT NULL;" in mysql, mysql
    assert marked + "DROP TABLE projects;" in sqlite, sqlite
    for section in (pg, mysql, sqlite):
        assert section.count("-- DESTRUCTIVE:") == 1, section
    # Unapplying it makes nothing NOT NULL.
    back = copy.manage("sqlmigrate", "0009", "--backwards", "--dialect", "all", in_process=True)
    assert back.returncode == 0 and "DESTRUCTIVE" not in back.stdout, back.stdout
