"""A migrate with nothing to apply, answered without importing Alembic (issue 24).

A start-up migration, a readiness probe's migrate, a deploy's second migrate: the database is at the history's
head and nothing is to be done but the checks. Alembic's package (its import brings every dialect's DDL module)
is then about a fifth of the command. When the cached facts of the version files (history.revision_facts) give
the history's heads, alembic_version holds exactly them, and what the full migrate would check or write finds
nothing to do, that is the answer; on anything else (a file new or changed, a revision pending, an applied log
to create or heal, a checksum mismatch, the fleet table missing) the full migrate (runner.migrator) runs, on the
same connection and under the same lock, and words or does it as always.

What it keeps of a migrate at head: the migration target check and the migration lock (runner.locks: a standby,
a read-only server, a transaction pooler or a Spider table is refused as before), alembic_version read under the
lock, the applied log's checksum verification of every applied file (a mismatch falls back to the full migrate,
which stops or warns per CHECKSUM_MISMATCH), and the applied log's and the fleet table's presence. `migrate
--check` at head (checked()) is told the same way, without the lock, as --check always read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, inspect, text

from project.core import db
from project.core.bookkeeping import FLEET_TABLE, VERSION_TABLE
from project.core.conf import Settings
from project.core.history import applied_log
from project.core.history.revision_facts import KnownHistory, known_history

if TYPE_CHECKING:  # Alembic's: imported only when the full migrate runs
    from project.core.history.plan import Plan


@dataclass(frozen=True)
class AtHead:
    """What migrate prints of a plan with no steps: the database's revisions and the target resolved."""

    current: str  # alembic_version's rows, as Plan.current joins them
    target: str  # the head's id, or "heads" for a history with several (as resolve_revision gives it)


@db.sync_entry  # async drivers: as migrator.migrate
def migrate(settings: Settings, target: str = "head", **options: Any) -> AtHead | Plan:
    """migrator.migrate(settings, target, **options), answered with AtHead (nothing applied, nothing called
    back) when the database is at `target` (head or heads) and nothing is to be checked or written; else the
    full migrate runs, on the connection and under the lock already taken when there is one, and its Plan
    returned. Alembic is imported only then."""
    from project.core.inspection.shards import refuse_sharded
    from project.core.runner.locks import locked_connection

    history = known_history(settings) if target in {"head", "heads"} and not options.get("fake") else None
    if history is None or not history.heads or (target == "head" and len(history.heads) > 1):
        from project.core.runner import migrator  # no revision yet, or several heads for `head`: it says so

        return migrator.migrate(settings, target, **options)
    with locked_connection(settings, before_lock=refuse_sharded) as connection:
        found = answer(settings, connection, history, target)
        if found is not None:
            return found
        from project.core.runner import migrator

        return migrator.migrate_locked(settings, connection, target, **options)


@db.sync_entry
def checked(settings: Settings, target: str = "head") -> bool:
    """`migrate --check` at head, answered as `migrate` is above: True when the history's heads (from the cached
    facts) are exactly what alembic_version records, read as migrator.preview reads it (no lock, the Spider
    refusal first); False: migrator.preview answers, as before (it says what is unapplied, or what is wrong)."""
    from project.core.inspection.shards import refuse_sharded

    history = known_history(settings) if target in {"head", "heads"} else None
    if history is None or not history.heads or (target == "head" and len(history.heads) > 1):
        return False
    with db.settings_connection(settings, db.migration_url(settings)) as connection:
        refuse_sharded(connection)
        current = _version_rows(connection)
    return current is not None and len(set(current)) == len(current) and set(current) == set(history.heads)


def answer(settings: Settings, connection: Connection, history: KnownHistory, target: str) -> AtHead | None:
    """AtHead when the database on `connection` (under the migration lock) is at `target` of `history` and a
    full migrate would find nothing to check or write; None otherwise. Leaves no transaction open."""
    current = _version_rows(connection)
    if current is None or len(set(current)) != len(current) or set(current) != set(history.heads):
        return None
    if not _log_agrees(settings, connection, history) or not _has_table(connection, FLEET_TABLE):
        return None
    return AtHead(", ".join(current), history.heads[0] if len(history.heads) == 1 else "heads")


def _version_rows(connection: Connection) -> tuple[str, ...] | None:
    """alembic_version's rows as MigrationContext.get_current_heads() reads them (the table looked for first,
    so that a fresh database logs no error); None when there is no such table."""
    try:
        if not inspect(connection).has_table(VERSION_TABLE):
            return None
        return tuple(row[0] for row in connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")))
    finally:
        applied_log.end_transaction(connection)


def _has_table(connection: Connection, name: str) -> bool:
    try:
        return bool(inspect(connection).has_table(name))
    finally:
        applied_log.end_transaction(connection)


def _log_agrees(settings: Any, connection: Connection, history: KnownHistory) -> bool:
    """The applied log says what applied_log.verify and heal would leave as it is: every revision of the history
    (at head, all are applied) logged as applied with its file's checksum (or its squash's), and no revision
    logged as applied that no file defines, but a squash's originals. A log to create or heal, or a mismatch to
    report, is the full migrate's."""
    from project.core.history.checksums import file_checksums

    try:
        entries = applied_log.read(connection)  # {} without a log: the full migrate creates it
    except applied_log.LogTableDamaged:
        return False  # worded by the full migrate, where it always was
    if not entries:
        return False
    for revision in history.revisions:
        entry = entries.get(revision)
        if entry is None or not entry.applied:
            return False
    replaced = {old for facts in history.revisions.values() for old in facts.get("replaces") or ()}
    if any(entry.applied and revision not in history.revisions and revision not in replaced
           for revision, entry in entries.items()):
        return False
    paths = {revision: str(path) for revision, path in history.paths.items()}
    sums = file_checksums(list(paths.values()), settings)
    for revision, path in paths.items():
        recorded = entries[revision].checksum
        if recorded is not None and recorded not in {sums[path], history.revisions[revision].get("replaces_checksum")}:
            return False
    return True
