"""`migrate --fake-initial`: take over a database whose tables were made before the history existed.

Django fakes its initial migration when the tables' names exist. Here the first revision is recorded as
applied only when the database holds exactly what that revision creates, compared as `check --database`
compares (project.core.inspection.schema_compare: columns with their types, nullability and defaults, primary keys,
foreign keys, indexes, uniques, enum values, CHECK constraints). Anything else is refused, naming each
difference, with nothing written: no alembic_version row, so the database is as it was.
"""

from __future__ import annotations

from typing import Any

from project.core.bookkeeping import bookkeeping_tables
from project.core.errors import MigrationError
from project.core.history.plan import make_plan
from project.core.history.scripts import alembic_config, current_heads, script_directory
from project.core.inspection import schema_compare
from project.core.runner import migrator
from project.core.runner.unmanaged import created_tables

SHOWN = 12  # differences named in the one error line; the rest are counted


class FakeInitialRefused(MigrationError):
    """The database's tables are not what the first revision creates."""


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


    script = script_directory(alembic_config(settings))
    with migrator.locked_connection(settings) as connection:
        if current_heads(connection):
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
        plan = make_plan(script, (), first)
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
