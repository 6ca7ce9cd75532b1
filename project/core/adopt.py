"""`migrate --fake-initial`: take over a database whose tables were made before the history existed.

Django fakes its initial migration when the tables' names exist. Here the first revision is recorded as
applied only when the database holds exactly what that revision creates, compared as `check --database`
compares (project.core.schema_compare: columns with their types, nullability and defaults, primary keys,
foreign keys, indexes, uniques, enum values, CHECK constraints). Anything else is refused, naming each
difference, with nothing written: no alembic_version row, so the database is as it was.
"""

from __future__ import annotations

from typing import Any

from project.core.errors import MigrationError

SHOWN = 12  # differences named in the one error line; the rest are counted
SHOWN_TABLES = 5  # tables named in UnmanagedDatabase's line


class FakeInitialRefused(MigrationError):
    """The database's tables are not what the first revision creates."""


class UnmanagedDatabase(MigrationError):
    """A plain migrate from an empty history on a database that already has the first revision's tables."""


def refuse_unmanaged(settings: Any, connection: Any, plan: Any) -> None:
    """Before a plain migrate runs anything on a database with no recorded revision: refuse it when the
    database already has tables that the plan's first revision creates (built before the migrations, or the
    settings point at the wrong database). Without this the revision's CREATE TABLE fails with the driver's
    "already exists", with no hint, and on MariaDB after the statements before it have run.

    Cost on a fresh database: one table-names read. Tables the history does not create (another application
    sharing the database) do not count; only then is the first revision replayed, in scratch SQLite (cached)."""
    import sqlalchemy as sa

    from project.core.applied_log import TABLE_NAME as APPLIED_LOG_TABLE
    from project.core.inspectdb import bookkeeping_tables
    from project.core.scratch import ScratchReplayError

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
    import sqlalchemy as sa

    from project.core.inspectdb import bookkeeping_tables
    from project.core.scratch import scratch_sqlite

    with scratch_sqlite(settings, revision) as scratch:
        return {t.lower() for t in sa.inspect(scratch).get_table_names()} - bookkeeping_tables()


def fake_initial(settings: Any) -> str | None:
    """Record the history's first revision as applied when the database has no recorded revision but
    has tables, and they are exactly what that revision creates. Returns the revision faked, or None when
    there was nothing to fake (a revision is already recorded, or the database has none of the tables the
    first revision creates).
    Raises FakeInitialRefused naming the differences otherwise."""
    from project.core import db

    return db.sync_entry(_fake_initial)(settings)


def _fake_initial(settings: Any) -> str | None:
    import sqlalchemy as sa

    from project.core import migrator, schema_compare
    from project.core.inspectdb import bookkeeping_tables

    script = migrator.script_directory(migrator.alembic_config(settings))
    with migrator.locked_connection(settings) as connection:
        if migrator.current_heads(connection):
            return None  # already managed: --fake-initial has nothing to do, as in Django
        present = set(sa.inspect(connection).get_table_names()) - bookkeeping_tables()
        if not present:
            return None  # an empty database: the first revision runs for real
        first = initial_revision(script)
        created = created_tables(settings, first)
        if not {t.lower() for t in present} & created:
            return None  # only tables the history does not create (another application's): it runs for real
        # What the first revision creates, column by column; other tables (another application's) are left alone.
        diffs = schema_compare.database_differences(connection, settings, first, tables=created)
        if diffs:
            raise FakeInitialRefused(refusal(first, diffs))
        plan = migrator.make_plan(script, (), first)
        migrator.run_plan(settings, connection, plan, fake=True, script=script)
    return first


def initial_revision(script: Any) -> str:
    """The history's one base revision."""
    bases = script.get_bases()
    if not bases:
        raise MigrationError("The history has no revisions yet: run `manage.py makemigrations` to write the "
                             "first, from models that describe the existing tables (`manage.py inspectdb`).")
    if len(bases) > 1:
        raise MigrationError(f"The history has {len(bases)} first revisions ({', '.join(sorted(bases))}): "
                             "--fake-initial needs one.")
    return str(bases[0])


def refusal(revision: str, diffs: list[str]) -> str:
    shown = "; ".join(diffs[:SHOWN]) + (f"; and {len(diffs) - SHOWN} more" if len(diffs) > SHOWN else "")
    return (f"--fake-initial refused: the database has tables but differs from what {revision} creates "
            f"({len(diffs)} difference(s): {shown}). Nothing was applied or recorded: make the database or "
            f"the revision match (`manage.py inspectdb` shows the database as models), then re-run.")
