"""Autogenerate against the history itself: the models compared with a scratch SQLite database
built by replaying the version files (project.core.scratch). Shared by makemigrations and check; needs no server."""

from __future__ import annotations

from typing import Any


def target_metadata(settings: Any) -> Any:
    """The application's MetaData, named by the TARGET_METADATA setting ("package.module:Base.metadata")."""
    from project.core.conf import ImproperlyConfigured, import_string, shared_settings

    path = (settings or shared_settings()).get("TARGET_METADATA")
    if not path:
        raise ImproperlyConfigured(
            "TARGET_METADATA is not set: name the models' MetaData in your settings, "
            "e.g. TARGET_METADATA = \"myapp.models:Base.metadata\"."
        )
    return import_string(path)


def autogenerate_ops(connection: Any, settings: Any) -> Any:
    from alembic.autogenerate import produce_migrations
    from alembic.runtime.migration import MigrationContext

    metadata = target_metadata(settings)
    context = MigrationContext.configure(connection, opts={"compare_type": True, "render_as_batch": True})
    try:
        return produce_migrations(context, metadata).upgrade_ops
    finally:
        if connection.in_transaction():
            connection.rollback()


def _flatten(ops: Any) -> list[Any]:
    out = []
    for op in ops.ops:
        out.extend(_flatten(op) if hasattr(op, "ops") else [op])
    return out


def describe_ops(upgrade_ops: Any) -> list[str]:
    """Short phrases for people: 'add column users.nickname', 'create table tags'..."""
    phrases = []
    for op in _flatten(upgrade_ops):
        kind = type(op).__name__.removesuffix("Op")
        words = "".join(f" {c.lower()}" if c.isupper() else c for c in kind).strip()
        table = getattr(op, "table_name", None)
        column = getattr(getattr(op, "column", None), "name", None) or getattr(op, "column_name", None)
        target = f"{table}.{column}" if table and column else (table or getattr(op, "index_name", None) or "")
        phrases.append(f"{words} {target}".strip())
    return phrases


def default_message(upgrade_ops: Any) -> str:
    phrases = describe_ops(upgrade_ops)
    text = " and ".join(phrases[:2]) + (" and more" if len(phrases) > 2 else "")
    return text.replace(".", " ")
