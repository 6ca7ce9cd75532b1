"""`check --database`: the live schema against the schema its recorded revision should have, and the applied log."""

from __future__ import annotations

from typing import Any

from project.core import db
from project.core.errors import UnknownRevision
from project.core.history import applied_log
from project.core.history.scripts import alembic_config, current_heads, script_directory
from project.core.inspection import schema_compare
from project.core.inspection.problem import Problem
from project.core.inspection.shards import sharded_message, spider_tables


def database_problems(settings: Any) -> list[Problem]:
    """The live database against the schema its recorded revision should have."""
    return db.sync_entry(_database_problems)(settings)  # async drivers too


def _database_problems(settings: Any) -> list[Problem]:
    with db.settings_connection(settings) as connection:
        heads = current_heads(connection)
        script = script_directory(alembic_config(settings))
        known = {rev.revision for rev in script.walk_revisions()}
        unknown = [h for h in heads if h not in known]
        if unknown:
            return [Problem(f"database: {UnknownRevision(unknown[0])}")]
        logged = [Problem(f"database: {message}")
                  for message in applied_log.problems(settings, connection, script, heads)]
        sharded = spider_tables(connection)
        if sharded:  # the head's definitions say nothing of the data nodes' tables: no comparison
            return [*logged, Problem(f"database: {sharded_message(sharded)}")]
        target = heads[0] if len(heads) == 1 else ("heads" if heads else None)
        # defaults, enum values and CHECK constraints too
        diffs = schema_compare.database_differences(connection, settings, target)
    where = f"database at {', '.join(heads) or 'zero'}"
    return logged + [Problem(f"{where}: {diff}") for diff in diffs]
