"""The scratch-database cache: a hit is the same database a replay builds, and an edited version
file is never answered from a stale entry."""

from __future__ import annotations

import types

import pytest
import sqlalchemy as sa
from conftest import TESTS_DIR
from migcopy import MigrationsCopy, fixture_copy

from project.core.conf import Settings
from project.core.history import scratch


def _schema(connection) -> dict:
    inspector = sa.inspect(connection)
    return {t: sorted(c["name"] for c in inspector.get_columns(t)) for t in inspector.get_table_names()}


def _settings(copy: MigrationsCopy | None = None) -> Settings:
    """Settings naming only a history: the copy's, else the fixture application's own."""
    module = types.ModuleType("scratch_settings")
    module.MIGRATIONS_DIR = str(copy.root if copy else TESTS_DIR / "fixture_app" / "migrations")
    module.DATABASE_URL = "sqlite://"
    return Settings(module, "scratch")


def test_cache_hit_equals_replay_and_edits_miss(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(scratch, "CACHE_DIR", tmp_path / "cache")
    copy = fixture_copy(tmp_path)
    settings = _settings(copy)

    with scratch.scratch_sqlite(settings, "0005") as replayed:
        expected = _schema(replayed)
        version = replayed.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    assert version == "0005"
    entries = list((tmp_path / "cache").glob("*.sqlite3"))
    assert len(entries) == 1

    with scratch.scratch_sqlite(settings, "0005") as restored:
        assert _schema(restored) == expected
        assert restored.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == "0005"
    assert list((tmp_path / "cache").glob("*.sqlite3")) == entries, "a hit must not add an entry"

    # Editing an earlier revision changes the key: the next answer is a fresh replay that sees it.
    path = next(copy.versions.glob("0004_*.py"))
    path.write_text(path.read_text().replace('new_column_name="details"', 'new_column_name="text"'))
    with scratch.scratch_sqlite(settings, "0005") as edited:
        assert "text" in _schema(edited)["tasks"] and "details" not in _schema(edited)["tasks"]
    assert len(list((tmp_path / "cache").glob("*.sqlite3"))) == 2


def test_unwritable_cache_is_skipped(tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    monkeypatch.setattr(scratch, "CACHE_DIR", blocker / "scratch")
    with scratch.scratch_sqlite(_settings(), "head") as connection:
        assert "tasks" in _schema(connection)


def test_the_types_and_defaults_the_history_gave(tmp_path, monkeypatch) -> None:
    """SQLite reflects DATETIME, BLOB, VARCHAR and the text 0; the scratch database's reflection gives what the
    operations said, through a batch rebuild (a rename) and a cache hit, and falls back to SQLite's own reading
    for a column that raw SQL changed since."""
    from project.core.history.scratch import HISTORY_DEFAULT, HISTORY_TYPE

    monkeypatch.setattr(scratch, "CACHE_DIR", tmp_path / "cache")
    copy = fixture_copy(tmp_path)
    for path in copy.versions.glob("*.py"):
        path.unlink()
    copy.add("0001", None, upgrade='''
        op.create_table("t",
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
            sa.Column("flag", sa.Boolean(), nullable=False, server_default=sa.false()),
            sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("(CURRENT_TIMESTAMP)")),
            sa.Column("data", sa.LargeBinary()),
            sa.Column("state", sa.Enum("a", "b", name="t_state")),
            sa.Column("name", sa.String(20)))''')
    copy.add("0002", "0001", upgrade='''
        with op.batch_alter_table("t") as batch_op:
            batch_op.alter_column("flag", new_column_name="lent", existing_type=sa.Boolean())''')
    copy.add("0003", "0002", upgrade='op.execute("ALTER TABLE t RENAME COLUMN name TO label")  # check: ignore[P101]')
    settings = _settings(copy)

    for attempt in ("replay", "cache hit"):
        with scratch.scratch_sqlite(settings, "0003") as connection:
            table = sa.Table("t", sa.MetaData(), autoload_with=connection)
        columns = table.columns
        assert repr(columns["id"].type) == "BigInteger()" and columns["id"].type._variant_mapping, attempt
        assert repr(columns["lent"].type) == "Boolean()", attempt
        assert isinstance(columns["lent"].info[HISTORY_DEFAULT], sa.sql.elements.False_), attempt
        assert columns["at"].type.timezone is True, attempt
        assert columns["at"].info[HISTORY_DEFAULT].text == "(CURRENT_TIMESTAMP)", attempt
        assert repr(columns["data"].type) == "LargeBinary()", attempt
        assert repr(columns["state"].type) == "Enum('a', 'b', name='t_state')", attempt
        assert all(columns[c].info.get(HISTORY_TYPE) for c in ("id", "lent", "at", "data", "state")), attempt
        # Renamed by raw SQL: no record follows it, so SQLite's reading, as before.
        assert repr(columns["label"].type) == "VARCHAR(length=20)" and HISTORY_TYPE not in columns["label"].info
    assert len(list((tmp_path / "cache").glob("*.sqlite3"))) == 1


def test_a_name_the_file_does_not_import(tmp_path, monkeypatch) -> None:
    """A revision that older makemigrations wrote with a type of the application's and no import: the replay's
    error says to import it, not to guard dialect-specific code."""
    monkeypatch.setattr(scratch, "CACHE_DIR", tmp_path / "cache")
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008",
             upgrade='op.add_column("tasks", sa.Column("at", project.core.db.UTCDateTime(timezone=True)))')
    with pytest.raises(scratch.ScratchReplayError) as raised:
        with scratch.scratch_sqlite(_settings(copy), "0009"):
            pass
    message = str(raised.value)
    assert "NameError: name 'project' is not defined" in message and "0009" in message
    assert "import what it names" in message and "guard dialect-specific" not in message
