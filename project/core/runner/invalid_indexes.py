"""The INVALID index a failed CREATE INDEX CONCURRENTLY leaves on PostgreSQL, named in the failure's one line."""

from __future__ import annotations

import re
from typing import Any

_INDEX_NAME = re.compile(
    r"\bCREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?((?:\"[^\"]+\"|\w+)(?:\.(?:\"[^\"]+\"|\w+))?)",
    re.IGNORECASE,
)


def advice(connection: Any, exc: BaseException) -> str | None:
    """When `exc` failed a CREATE INDEX CONCURRENTLY on PostgreSQL and the index it names is left INVALID
    (pg_index.indisvalid false: a failed concurrent build keeps it, unused by queries but updated by every
    write), the sentence that says so and how to fix it; else None."""
    statement = getattr(exc, "statement", None)
    if connection.dialect.name != "postgresql" or not statement:
        return None
    match = _INDEX_NAME.search(statement)
    if not match:
        return None
    name = match.group(1)
    invalid = invalid_indexes(connection, [name.strip('"').split('"."')[-1].split(".")[-1]])
    if not invalid:
        return None
    return (f"The failed concurrent build left index {name} INVALID (pg_index.indisvalid = false): drop it with "
            f"`DROP INDEX CONCURRENTLY {name};`, then re-run migrate")


def invalid_indexes(connection: Any, names: list[str] | None = None) -> list[str]:
    """INVALID indexes of the current database's visible schemas (all, or those named)."""
    from sqlalchemy import text

    if connection.in_transaction():
        connection.rollback()  # the failed statement aborted the transaction
    try:
        rows = connection.execute(text(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE NOT i.indisvalid AND pg_catalog.pg_table_is_visible(c.oid)"
            + (" AND c.relname = ANY(:names)" if names is not None else "") + " ORDER BY c.relname"
        ), {"names": names} if names is not None else {}).scalars().all()
    finally:
        if connection.in_transaction():
            connection.rollback()
    return list(rows)
