"""Offline SQL of a squashed history: a move that crosses a squash whole (a fresh database, a downgrade back before
START) renders the squash, exactly as the online `migrate` runs it; a move starting inside the range renders the
originals. Scripts are generated under settings whose database cannot be reached, applied with the engine's own
client (as tests/test_offline_sql.py does), and compared with an online `migrate` of the same squashed history."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from migcopy import MigrationsCopy, fixture_copy, one_clean_line
from test_offline_sql import _mariadb, _psql, _sqlite3
from test_squash import load, migrate, schema

ORIGINALS = [f"000{i}" for i in range(1, 9)]
BOOKKEEPING = re.compile(r"^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+alembic_version\b.*$", re.I | re.M)
LOG_ROW = re.compile(r"^INSERT INTO alembic_migration_log .*? VALUES \('([^']+)'", re.M)


@dataclass
class Databases:
    """Two fresh databases of one engine: `offline` takes the scripts, `online` the online migrate."""

    offline: str
    online: str
    client: Callable[[str, str], subprocess.CompletedProcess]

    def apply(self, script: str) -> None:
        result = self.client(self.offline, script)
        assert result.returncode == 0, f"client failed:\n{result.stderr}\n--- script ---\n{script}"


@pytest.fixture
def dbs(db_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Databases]:
    if db_url.startswith("sqlite"):
        yield Databases(db_url, f"sqlite:///{tmp_path / 'online.db'}", _sqlite3)
        return
    postgresql = db_url.startswith("postgresql")
    server = request.getfixturevalue("pg_server" if postgresql else "mysql_server")
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield Databases(db_url, server.create_database(name), (_psql if postgresql else _mariadb)(server))
    server.drop_database(name)


def unreachable(url: str) -> str:
    """The same engine, somewhere no connection can go: generating the script must not try."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return "sqlite:////nonexistent-dir-for-offline-squash/app.db"
    return parsed.set(password="wrongpw", host="db.invalid").render_as_string(hide_password=False)


def offline(copy: MigrationsCopy, url: str, *args: str) -> str:
    result = copy.manage(*args, db_url=unreachable(url), env={"CHECKSUM_MISMATCH": "error"}, in_process=True)
    assert result.returncode == 0, result.stderr
    assert "wrongpw" not in result.stdout + result.stderr
    return result.stdout


def bookkeeping(script: str) -> list[str]:
    return [" ".join(line.split()) for line in BOOKKEEPING.findall(script)]


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.exec_driver_sql(sql)]
    finally:
        engine.dispose()


def squashed_copy(tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[MigrationsCopy, Any]:
    from project.core.authoring.squash_writer import write_squash

    monkeypatch.setenv("CHECKSUM_MISMATCH", "error")  # an offline log row the online policy refused would fail
    copy = fixture_copy(tmp_path)
    settings = load(copy, url, monkeypatch)
    write_squash(settings, "0001", "0008")
    return copy, settings


def test_fresh_deploy_script_is_the_squash(dbs: Databases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy, online = squashed_copy(tmp_path, dbs.online, monkeypatch)

    script = offline(copy, dbs.offline, "migrate", "--sql")
    assert "upgrade base -> 0008 (1 revision(s))" in script and "Squashed 0001..0008" in script
    # No chain of per-original version moves: END is inserted once, and nothing else touches alembic_version.
    moves = bookkeeping(script)
    assert len(moves) == 1 and moves[0].startswith("INSERT INTO alembic_version") and "'0008'" in moves[0], moves
    assert LOG_ROW.findall(script) == ["0008"]

    dbs.apply(script)
    steps = migrate(online)  # the same squashed history, online, on a fresh database of the engine
    assert len(steps) == 1 and steps[0].startswith("0008 Squashed 0001..0008"), steps
    assert schema(dbs.offline) == schema(dbs.online)
    assert schema(dbs.offline)["tables"].keys() == {"projects", "tasks"}
    assert query(dbs.offline, "SELECT version_num FROM alembic_version") == [("0008",)]
    log = "SELECT revision, direction, state, checksum FROM alembic_migration_log"
    assert query(dbs.offline, log) == query(dbs.online, log)  # the checksum the online run records, too

    # The database the script built is one the tool accepts as it is (prod checksum policy): nothing to do.
    assert migrate(load(copy, dbs.offline, monkeypatch)) == []

    # Back across the whole range: the squash's downgrade, recorded under END's id, returns to an empty schema.
    down = offline(copy, dbs.offline, "migrate", "--sql", "head:base")
    assert "downgrade 0008 -> base (1 revision(s))" in down
    assert [b.split()[0] for b in bookkeeping(down)] == ["DELETE"] and "'0008'" in bookkeeping(down)[0]
    dbs.apply(down)
    assert schema(dbs.offline) == {"tables": {}, "enums": []}
    assert query(dbs.offline, "SELECT version_num FROM alembic_version") == []


def test_a_range_starting_inside_the_squash_renders_the_originals(
    dbs: Databases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy, online = squashed_copy(tmp_path, dbs.online, monkeypatch)
    migrate(online)
    squashed = schema(dbs.online)
    at_0003 = load(copy, dbs.offline, monkeypatch)
    assert [s.split()[0] for s in migrate(at_0003, "0003")] == ["0001", "0002", "0003"]  # a target inside: originals

    script = offline(copy, dbs.offline, "migrate", "--sql", "--from", "0003")
    assert "upgrade 0003 -> 0008 (5 revision(s))" in script and "Squashed" not in script
    moves = bookkeeping(script)
    assert [re.findall(r"'(\d{4})'", b) for b in moves] == [["0004", "0003"], ["0005", "0004"], ["0006", "0005"],
                                                            ["0007", "0006"], ["0008", "0007"]], moves
    assert LOG_ROW.findall(script) == ORIGINALS[3:]
    dbs.apply(script)
    assert schema(dbs.offline) == squashed
    assert query(dbs.offline, "SELECT version_num FROM alembic_version") == [("0008",)]


def test_sqlmigrate_shows_the_squash_for_a_range_and_the_file_for_one_revision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No database at all: the three dialects side by side."""
    copy, _ = squashed_copy(tmp_path, f"sqlite:///{tmp_path / 'unused.db'}", monkeypatch)

    def sections(*args: str) -> dict[str, str]:
        result = copy.manage("sqlmigrate", *args, "--dialect", "all", in_process=True)
        assert result.returncode == 0, result.stderr
        parts = re.split(r"^-- ===== (\w+) =====$", result.stdout, flags=re.M)
        return dict(zip(parts[1::2], parts[2::2], strict=True))

    for dialect, text in sections("base:head").items():
        runs = re.findall(r"^-- Running (.*)$", text, re.M)
        assert runs == ["upgrade base -> 0008: Squashed 0001..0008: 8 revisions in one"], (dialect, runs)
        assert "CREATE TABLE projects" in text and len(bookkeeping(text)) == 1 and "'0008'" in bookkeeping(text)[0]
    # Unapplying the whole range, asked either way: the squash's downgrade.
    for args in (("head:base",), ("base:head", "--backwards")):
        for dialect, text in sections(*args).items():
            runs = re.findall(r"^-- Running (.*)$", text, re.M)
            assert runs == ["downgrade 0008 -> base: Squashed 0001..0008: 8 revisions in one"], (args, dialect, runs)
            assert "DROP TABLE projects" in text, dialect
    # One revision is that version file's own SQL, END included: 0008 drops tasks.legacy_flag, creates no table.
    for dialect, text in sections("0008").items():
        assert re.findall(r"^-- Running (.*)$", text, re.M) == ["upgrade 0007 -> 0008: Drop tasks.legacy_flag"]
        assert "CREATE TABLE projects" not in text and "legacy_flag" in text, dialect
    # A range starting inside the squashed one: the originals.
    for dialect, text in sections("0003:head").items():
        runs = re.findall(r"^-- Running upgrade (\d+) ->", text, re.M)
        assert runs == ["0003", "0004", "0005", "0006", "0007"] and "Squashed" not in text, (dialect, runs)


def test_a_carried_get_bind_read_is_the_originals_limit_in_one_line(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A squash carries a data revision verbatim: Alembic's offline mode cannot run its get_bind() read, for the
    squash as for the original; the line names the squash file and the carried revision. SQLite renders both
    (the scratch capture runs online)."""
    from project.core.authoring.squash_writer import write_squash

    copy = fixture_copy(tmp_path)
    copy.add("a001", "0008", 'op.create_table("x", sa.Column("id", sa.Integer(), primary_key=True), '
                             'sa.Column("a", sa.String(length=10)))', 'op.drop_table("x")')
    copy.add("a002", "a001", 'n = op.get_bind().execute(sa.text("SELECT COUNT(*) FROM x")).scalar()\n'
                             'op.bulk_insert(sa.table("x", sa.column("id"), sa.column("a")), [{"id": 1, "a": str(n)}])',
             'op.execute(sa.table("x").delete())')
    copy.add("a003", "a002", 'op.add_column("x", sa.Column("b", sa.Integer()))',
             'with op.batch_alter_table("x") as b:\n    b.drop_column("b")')
    write_squash(load(copy, f"sqlite:///{tmp_path / 'unused.db'}", monkeypatch), "a001", "a003")

    for dialect in ("postgresql", "mysql"):
        squashed = one_clean_line(copy.manage("sqlmigrate", "0008:head", "--dialect", dialect, in_process=True))
        assert re.search(r"Cannot render revision a003 \(.*squashed/a003_squashed_a001_a003\.py\) \(in a002, which "
                         rf"it carries verbatim\) offline for {dialect}", squashed), squashed
        original = one_clean_line(copy.manage("sqlmigrate", "a001:head", "--dialect", dialect, in_process=True))
        assert re.search(rf"Cannot render revision a002 \(.*versions/a002_test\.py\) offline for {dialect}",
                         original), original
        limit = "If it reads the database through op.get_bind(), it can only run online"
        assert limit in squashed and limit in original
    rendered = copy.manage("sqlmigrate", "0008:head", "--dialect", "sqlite", in_process=True)
    assert rendered.returncode == 0 and "INSERT INTO x (id, a) VALUES (1, '0')" in rendered.stdout, rendered.stderr


def test_a_squash_inside_the_history_from_starts_parent(dbs: Databases, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Squash 0002..0005; a database at 0001 (START's parent) takes the squash, then 0006..0008 as usual."""
    from project.core.authoring.squash_writer import write_squash

    monkeypatch.setenv("CHECKSUM_MISMATCH", "error")
    copy = fixture_copy(tmp_path)
    online = load(copy, dbs.online, monkeypatch)
    write_squash(online, "0002", "0005")
    assert [s.split()[0] for s in migrate(online, "0001")] == ["0001"]
    assert [s.split()[0] for s in migrate(online)] == ["0005", "0006", "0007", "0008"]
    migrate(load(copy, dbs.offline, monkeypatch), "0001")

    script = offline(copy, dbs.offline, "migrate", "--sql", "0001:head")
    assert "upgrade 0001 -> 0008 (4 revision(s))" in script and "upgrade 0001 -> 0005: Squashed 0002..0005" in script
    moves = [re.findall(r"'(\d{4})'", b) for b in bookkeeping(script)]
    assert moves == [["0005", "0001"], ["0006", "0005"], ["0007", "0006"], ["0008", "0007"]], moves
    assert LOG_ROW.findall(script) == ["0005", "0006", "0007", "0008"]
    dbs.apply(script)
    assert schema(dbs.offline) == schema(dbs.online)
    assert query(dbs.offline, "SELECT version_num FROM alembic_version") == [("0008",)]
    log = "SELECT revision, state, checksum FROM alembic_migration_log WHERE revision > '0001' ORDER BY revision"
    assert query(dbs.offline, log) == query(dbs.online, log)
