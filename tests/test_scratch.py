"""The scratch-database cache: a hit is the same database a replay builds, and an edited version
file is never answered from a stale entry."""

from __future__ import annotations

import types

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
