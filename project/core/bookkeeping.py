"""The tool's own tables, beside the application's: Alembic's version table, the applied log, Galera's lock row,
the fleet of running instances.

Every layer needs their names (the runner writes them; inspection, adoption and comparisons leave them out), so
they live here, at the bottom, with the one test that tells the tool's statements from a revision's own.
"""

from __future__ import annotations

VERSION_TABLE = "alembic_version"
APPLIED_LOG_TABLE = "alembic_migration_log"  # project.core.history.applied_log
GALERA_LOCK_TABLE = "alembic_migrate_lock"  # project.core.runner.locks: the lock row on Galera
FLEET_TABLE = "alembic_migration_fleet"  # project.core.runner.fleet: the running instances and their code's head
BACKFILL_TABLE = "alembic_migration_backfill"  # project.core.history.backfill: where each batched backfill got to
# Ends every statement of a backfill's batches: they are the tool's bookkeeping of a revision's data change
# (recorded batch by batch in BACKFILL_TABLE), not statements to report as "what of the revision ran".
BACKFILL_MARK = "/* backfill batch */"


def bookkeeping_tables() -> set[str]:
    """Tables the tool itself writes: never the application's models, never part of a schema comparison."""
    return {VERSION_TABLE, GALERA_LOCK_TABLE, APPLIED_LOG_TABLE, FLEET_TABLE, BACKFILL_TABLE}


def is_schema_statement(statement: str) -> bool:
    """A statement the revision itself ran: not a read, not a session setting, not the tool's bookkeeping
    (Alembic's alembic_version, the applied log's rows, a backfill's batches and progress rows)."""
    words = statement.split()
    if not words or words[0].upper() in {"SELECT", "SHOW", "PRAGMA", "DESCRIBE", "EXPLAIN", "BEGIN", "COMMIT",
                                         "ROLLBACK", "SET", "RESET"}:
        return False
    lowered = statement.lower()
    return not any(name in lowered for name in (VERSION_TABLE, APPLIED_LOG_TABLE, BACKFILL_TABLE, BACKFILL_MARK))


def schema_statements_run(executed: list[str]) -> list[str]:
    """The statements of `executed` the revision itself ran (is_schema_statement), each on one line."""
    return [" ".join(s.split()) for s in executed if is_schema_statement(s)]
