"""The fixtures docs/testing.md documents: a fresh database at head on each engine."""

from __future__ import annotations

from fastapi.testclient import TestClient

from project.core.db import create_engine_for
from project.core.history.scripts import alembic_config, current_heads, history_head, script_directory


def test_migrated_settings_give_a_database_at_head(migrated_settings, migrated_db_url: str) -> None:
    assert migrated_db_url == migrated_settings.DATABASE_URL
    script = script_directory(alembic_config(migrated_settings))
    head = history_head(script)
    engine = create_engine_for(migrated_db_url)
    try:
        with engine.connect() as connection:
            assert current_heads(connection) == ((head,) if head else ())
    finally:
        engine.dispose()


def test_readme_example(migrated_settings) -> None:
    from project.app.main import create_app

    with TestClient(create_app(migrated_settings)) as client:
        ready = client.get("/health/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["pending"] == 0
