"""A database with tables but no recorded revision: a plain migrate refuses it before anything runs.

The tables were made before the migrations (adopt it: `migrate --fake-initial`, project.core.runner.adopt), or the
settings point at the wrong database. Without this the first revision's CREATE TABLE fails with the driver's
"already exists", with no hint, and on MariaDB after the statements before it have run.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from project.core.bookkeeping import APPLIED_LOG_TABLE, bookkeeping_tables
from project.core.errors import MigrationError

SHOWN_TABLES = 5  # tables named in UnmanagedDatabase's line


class UnmanagedDatabase(MigrationError):
    """A plain migrate from an empty history on a database that already has the first revision's tables."""


def refuse_unmanaged(settings: Any, connection: Any, plan: Any) -> None:
    """Before a plain migrate runs anything on a database with no recorded revision: refuse it when the
    database already has tables that the plan's first revision creates (built before the migrations, or the
    settings point at the wrong database). Without this the revision's CREATE TABLE fails with the driver's
    "already exists", with no hint, and on MariaDB after the statements before it have run.

    Cost on a fresh database: one table-names read. Tables the history does not create (another application
    sharing the database) do not count; only then is the first revision replayed, in scratch SQLite (cached)."""
    if plan.current or not plan.steps or not plan.forwards:
        return
    names = set(sa.inspect(connection).get_table_names())
    if connection.in_transaction():
        connection.rollback()  # the reflection's implicit transaction: the plan runs in its own
    present = names - bookkeeping_tables()
    if not present or APPLIED_LOG_TABLE in names:
        # Empty, or this tool has migrated here: a first revision that failed half-way (MariaDB) is the
        # applied log's business (`[!]` in showmigrations, `manage.py repair`), not an adoption.
        return
    first = plan.steps[0].revision
    # Imported here: only a database with tables and no history needs the scratch replay (and sqlite3).
    from project.core.history.scratch import ScratchReplayError

    try:
        created = created_tables(settings, first)
    except ScratchReplayError:
        return  # cannot tell without SQLite: the revision runs and the database's own error says what clashed
    clashing = sorted(t for t in present if t.lower() in created)
    if clashing:
        shown = ", ".join(clashing[:SHOWN_TABLES]) + (", ..." if len(clashing) > SHOWN_TABLES else "")
        raise UnmanagedDatabase(
            f"The database already has tables that {first} creates ({shown}) but no migration applied: if it "
            "was built before the migrations, run `manage.py migrate --fake-initial`; otherwise point the "
            "settings at an empty database. Nothing was applied.")


def created_tables(settings: Any, revision: str) -> set[str]:
    """Lower-cased names of the tables the history has at `revision` (MySQL on some systems and SQLite fold
    case), from its replay in scratch SQLite (cached). Raises ScratchReplayError when it cannot be replayed."""
    from project.core.history.scratch import scratch_sqlite

    with scratch_sqlite(settings, revision) as scratch:
        return {t.lower() for t in sa.inspect(scratch).get_table_names()} - bookkeeping_tables()
