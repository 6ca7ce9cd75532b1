"""The reflected schema at head is the same on SQLite, MariaDB and PostgreSQL."""

from __future__ import annotations

from io import StringIO

import sqlalchemy as sa

from project.app.models import Base
from project.core.conf import load_settings
from project.core.db import create_engine_for
from project.core.management import call_command


def type_family(type_: sa.types.TypeEngine, model_type: sa.types.TypeEngine | None) -> str:
    """A portable family: MySQL's TINYINT(1) is a Boolean; SQLite stores an Enum as VARCHAR."""
    if isinstance(type_, sa.Boolean) or (type(type_).__name__ == "TINYINT" and getattr(type_, "display_width", 0) == 1):
        return "boolean"
    if isinstance(type_, sa.Enum) or (isinstance(model_type, sa.Enum) and isinstance(type_, sa.String)):
        return "enum"
    if isinstance(type_, sa.Text) or type(type_).__name__ in {"LONGTEXT", "MEDIUMTEXT", "TEXT"}:
        return "text"
    if isinstance(type_, sa.String):
        return f"string({type_.length})"
    if isinstance(type_, sa.Integer):
        return "integer"
    return type(type_).__name__.lower()


def _model_type(table: str, column: str) -> sa.types.TypeEngine | None:
    model_table = Base.metadata.tables.get(table)
    return model_table.c[column].type if model_table is not None and column in model_table.c else None


def normalized_schema(url: str) -> dict:
    engine = create_engine_for(url)
    try:
        inspector = sa.inspect(engine)
        schema = {}
        for table in sorted(inspector.get_table_names()):
            fks = inspector.get_foreign_keys(table)
            uniques = {u["name"]: tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)}
            # MySQL backs each FK and unique constraint with an index of the same name: not an index of ours.
            indexes = {
                i["name"]: (tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(table)
                if i["name"] not in uniques and i["name"] not in {fk["name"] for fk in fks}
                and not i.get("duplicates_constraint")
            }
            schema[table] = {
                "columns": {
                    c["name"]: (type_family(c["type"], _model_type(table, c["name"])), c["nullable"])
                    for c in inspector.get_columns(table)
                },
                "pk": tuple(inspector.get_pk_constraint(table)["constrained_columns"]),
                "fks": sorted(
                    (fk["name"], tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
                    for fk in fks
                ),
                "uniques": uniques,
                "indexes": indexes,
            }
        return schema
    finally:
        engine.dispose()


def test_head_schema_is_equivalent(tmp_path, pg_server, mysql_server, monkeypatch) -> None:
    urls = {
        "sqlite": f"sqlite:///{tmp_path / 'head.sqlite3'}",
        "mysql": mysql_server.create_database("portable_head"),
        "postgresql": pg_server.create_database("portable_head"),
    }
    schemas = {}
    for name, url in urls.items():
        monkeypatch.setenv("DEV_DATABASE_URL", url)
        call_command("migrate", settings="dev", stdout=StringIO())
        assert load_settings("dev").DATABASE_URL == url
        schemas[name] = normalized_schema(url)

    # The applied log and the fleet are the tool's bookkeeping, their timestamp and float types each engine's own.
    logs = [schema.pop("alembic_migration_log") for schema in schemas.values()]
    assert all(set(log["columns"]) == set(logs[0]["columns"]) for log in logs)
    fleets = [schema.pop("alembic_migration_fleet") for schema in schemas.values()]
    assert all(set(f["columns"]) == set(fleets[0]["columns"]) for f in fleets)
    expected = schemas["postgresql"]
    assert set(expected) == {"alembic_version", "users", "posts"}
    assert expected["users"]["columns"] == {
        "id": ("integer", False), "email": ("string(255)", False), "name": ("string(200)", True),
        "is_active": ("boolean", False),
    }
    assert expected["posts"]["columns"] == {
        "id": ("integer", False), "user_id": ("integer", False), "title": ("string(200)", False),
        "content": ("text", True), "status": ("enum", False),
    }
    assert expected["users"]["uniques"] == {"uq_users_email": ("email",)}
    assert expected["posts"]["indexes"] == {"ix_posts_title": (("title",), False)}
    assert expected["posts"]["fks"] == [("fk_posts_user_id_users", ("user_id",), "users", ("id",))]
    assert schemas["sqlite"] == expected
    assert schemas["mysql"] == expected
