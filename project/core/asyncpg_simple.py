"""asyncpg: statements without parameters that return no rows go out as one simple query.

SQLAlchemy's asyncpg dialect prepares every statement (a round trip to Parse/Describe, one to Bind/Execute) and
keeps it in an LRU cache, closing evicted ones. A migration is hundreds of one-off DDL statements and version
UPDATEs with literal values: each paid twice the round trips of psycopg2, and `migrate` at N=300 ran ~1.2x
psycopg2's time (bench/RESULTS.md). asyncpg's own `Connection.execute(sql)` without arguments uses PostgreSQL's
simple query protocol: one round trip, nothing prepared. Statements with parameters or rows keep SQLAlchemy's path.

This relies on the adapter's private parts (`_adapt_connection`, `_execute_mutex`, `_transaction`,
`_start_transaction`, `_handle_exception`, the cursor's `_rows`/`_description`/`_rowcount`), pinned by
tests/test_asyncpg_simple.py: if SQLAlchemy changes them, that test fails and `enabled()` turns the path off.
"""

from __future__ import annotations

import re
from collections import deque
from typing import Any

from sqlalchemy import Engine, event

_ADAPTER_PARTS = ("_execute_mutex", "_transaction", "_start_transaction", "_handle_exception", "_connection")
_STATUS_ROWCOUNT = re.compile(r"(?:UPDATE|DELETE|INSERT \d+) (\d+)")


def install(engine: Engine) -> None:
    """Send parameterless, row-less statements of `engine` (an asyncpg AsyncEngine's sync_engine) as simple queries."""
    event.listen(engine, "do_execute", _do_execute)


def _simple(parameters: Any, context: Any) -> bool:
    """DDL, or an INSERT/UPDATE/DELETE without RETURNING, with nothing bound."""
    if parameters or context is None:
        return False
    if context.isddl:
        return True
    compiled = context.compiled
    return compiled is not None and (compiled.isinsert or compiled.isupdate or compiled.isdelete) \
        and not compiled.effective_returning


def enabled(cursor: Any) -> bool:
    adapter = getattr(cursor, "_adapt_connection", None)
    return adapter is not None and all(hasattr(adapter, part) for part in _ADAPTER_PARTS) \
        and not getattr(cursor, "server_side", False)


def _do_execute(cursor: Any, statement: str, parameters: Any, context: Any) -> bool | None:
    if not _simple(parameters, context) or not enabled(cursor):
        return None  # SQLAlchemy's own do_execute
    from sqlalchemy.util import concurrency

    await_ = getattr(concurrency, "await_", None) or concurrency.await_only  # SQLAlchemy 2.1 renamed it
    status = await_(_execute(cursor, statement))
    match = _STATUS_ROWCOUNT.match(status or "")
    cursor._rows = deque()
    cursor._description = None
    cursor._rowcount = int(match.group(1)) if match else -1  # Alembic checks the version UPDATE's rowcount
    return True


async def _execute(cursor: Any, statement: str) -> str | None:
    """What the adapter's _prepare_and_execute does, with asyncpg's simple-query execute in place of prepare+fetch."""
    adapter = cursor._adapt_connection
    async with adapter._execute_mutex:
        if adapter._transaction is None:
            await adapter._start_transaction()  # a no-op in AUTOCOMMIT (autocommit_block)
        try:
            status: str | None = await adapter._connection.execute(statement)
            return status
        except Exception as error:
            adapter._handle_exception(error)  # raises the DBAPI error SQLAlchemy expects
    return None
