"""`manage.py repair`: after review, make the applied log agree with the files and the database again.

- An applied revision whose file was edited (or whose logged checksum is garbage): record the file's
  checksum now (a `repaired` row, direction up).
- A revision the log counts as applied that no file defines: record it as removed (`repaired`, down).
- A failed revision (MySQL/MariaDB half-way, or a migrate killed mid-revision), once the operator fixed the
  database by hand: the reflected database is compared, with check --database's comparison, with the
  schema the history builds (scratch SQLite replay). The database has what the revision creates: it is
  stamped applied. It has what the revision before it left: the failure is cleared and migrate runs it
  again. Anything else: what differs is said and nothing is recorded.
- A downgrade that did not finish (MySQL/MariaDB: its migrate interrupted, killed or its server lost), the
  revision still recorded: the database has what the revision creates, it stays applied; what was there before
  it, it is stamped unapplied. Anything else: what differs is said and nothing is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from project.core import db
from project.core.errors import MigrationError, relative_path
from project.core.history import applied_log
from project.core.history.scripts import lookup


class RepairRefused(MigrationError):
    """A failed revision whose database matches neither side of it."""


@dataclass
class Outcome:
    done: list[str] = field(default_factory=list)  # one line per revision recorded


@db.sync_entry
def repair(settings: Any, revisions: list[str]) -> Outcome:
    """Repair the named revisions (ids or unique prefixes), or every one that needs it."""
    from project.core.history.scripts import alembic_config, check_known, current_heads, script_directory
    from project.core.runner import migrator

    script = script_directory(alembic_config(settings))
    outcome = Outcome()
    with migrator.locked_connection(settings) as connection:
        applied_log.ensure(connection)
        heads = current_heads(connection)
        check_known(script, heads)
        entries = applied_log.heal(connection, settings, script, heads)
        named = [_resolve(script, entries, rev) for rev in revisions]
        mismatched = {m.revision for m in applied_log.mismatches(settings, script, heads, entries)}
        failed = {rev for rev, entry in entries.items() if entry.failed}
        for rev in named or sorted(mismatched | failed, key=lambda r: list(entries).index(r)):
            if rev in mismatched:
                outcome.done.append(_record_checksum(connection, settings, script, entries[rev]))
            elif rev in failed:
                if entries[rev].direction == "down":
                    outcome.done.append(_clear_downgrade(connection, settings, script, rev))
                else:
                    outcome.done.append(_clear_failure(connection, settings, script, rev))
                heads = current_heads(connection)
            else:
                outcome.done.append(f"{rev}: nothing to repair (its checksum matches and it has not failed).")
    return outcome


def _resolve(script: Any, entries: dict[str, applied_log.Entry], rev: str) -> str:
    from project.core.history.scripts import resolve_revision

    if rev in entries:
        return rev  # a revision the log knows, whether a file still defines it or not
    return resolve_revision(script, rev) or rev


def _record_checksum(connection: Connection, settings: Any, script: Any, entry: applied_log.Entry) -> str:
    from project.core.history.checksums import file_checksum

    found = lookup(script, entry.revision)
    if found is None:
        _record(connection, entry.revision, "down", statements="(its version file was removed)")
        return f"{entry.revision}: recorded as removed (no version file defines it)."
    checksum = file_checksum(found.path, settings)
    _record(connection, entry.revision, "up", checksum=checksum)
    return f"{entry.revision}: recorded the checksum of {relative_path(found.path)} as it is now."


def _clear_failure(connection: Connection, settings: Any, script: Any, rev: str) -> str:
    from alembic import command

    from project.core.history.checksums import file_checksum
    from project.core.history.scratch import ScratchReplayError
    from project.core.history.scripts import alembic_config, current_heads, lookup
    from project.core.inspection import schema_compare

    found = lookup(script, rev)
    if found is None:
        raise RepairRefused(f"Revision {rev} failed and no version file defines it: restore its file first.")
    heads = current_heads(connection)
    live = _live_schema(connection)
    dialect = connection.dialect.name
    before = schema_compare.history_schema(settings, heads[0] if len(heads) == 1 else ("heads" if heads else None))
    from_before = schema_compare.compare(before, live, dialect)
    unreplayable = ""
    try:
        after = schema_compare.history_schema(settings, rev)
        from_after: list[str] | None = schema_compare.compare(after, live, dialect)
    except ScratchReplayError as exc:
        # The file that failed may still fail (the operator undid its work by hand before fixing it): what
        # it would create is unknown, what was there before it is not.
        from_after, unreplayable = None, str(exc)
    checksum = file_checksum(found.path, settings)
    if from_after == [] and rev not in heads:
        command.stamp(alembic_config(settings, connection=connection), rev)
        _commit(connection)
        _record(connection, rev, "up", checksum=checksum)
        return f"{rev}: the database has what it creates; recorded as applied."
    if not from_before:
        _record(connection, rev, "down", checksum=checksum)
        return f"{rev}: nothing of it is left in the database; failure cleared (`manage.py migrate` runs it again)."
    if from_after is None:
        raise RepairRefused(
            f"Revision {rev} failed and the database differs from what was there before it: "
            f"{'; '.join(from_before)}; and its file cannot be replayed to compare with what it creates "
            f"({unreplayable}). Undo it by hand, or fix the file, then run `manage.py repair {rev}` again."
        )
    raise RepairRefused(
        f"Revision {rev} failed and the database matches neither what it creates nor what was there before it; "
        f"against what it creates: {'; '.join(from_after)}. Finish or undo it by hand, then run `manage.py repair "
        f"{rev}` again."
    )


def _clear_downgrade(connection: Connection, settings: Any, script: Any, rev: str) -> str:
    """A downgrade that did not finish (MySQL/MariaDB: interrupted, killed, its server lost), with `rev` still
    recorded: the database is compared with the schema with `rev` applied and with it unapplied."""
    from alembic import command

    from project.core.history.checksums import file_checksum
    from project.core.history.scripts import alembic_config, current_heads
    from project.core.inspection import schema_compare

    found = lookup(script, rev)
    if found is None:
        raise RepairRefused(f"Revision {rev} failed and no version file defines it: restore its file first.")
    down = found.down_revision
    parents: tuple[str | None, ...] = tuple(down) if isinstance(down, (tuple, list)) else (down,)
    heads = current_heads(connection)
    if heads != (rev,) or len(parents) != 1:
        raise RepairRefused(
            f"Revision {rev}'s downgrade did not finish, and repair settles that only on a straight history recorded "
            f"at {rev}: finish or undo it by hand, then record where the database is with `manage.py migrate "
            f"REVISION --fake`.")
    live = _live_schema(connection)
    dialect = connection.dialect.name
    checksum = file_checksum(found.path, settings)
    with_it = schema_compare.compare(schema_compare.history_schema(settings, rev), live, dialect)
    if not with_it:
        _record(connection, rev, "up", checksum=checksum)
        return (f"{rev}: the database still has what it creates (its downgrade left nothing); recorded as applied "
                "(`manage.py migrate` runs the downgrade again when asked).")
    without = schema_compare.compare(schema_compare.history_schema(settings, parents[0]), live, dialect)
    if not without:
        command.stamp(alembic_config(settings, connection=connection), parents[0] or "base")
        _commit(connection)
        _record(connection, rev, "down", checksum=checksum)
        return f"{rev}: the database has what was there before it; recorded as unapplied."
    raise RepairRefused(
        f"Revision {rev}'s downgrade did not finish and the database matches neither {rev} applied nor unapplied; "
        f"against {rev} unapplied: {'; '.join(without)}. Finish or undo it by hand, then run `manage.py repair "
        f"{rev}` again."
    )


def _record(connection: Connection, revision: str, direction: str, **values: Any) -> None:
    """A `repaired` row: direction up = counts as applied from now on, down = counts as not applied."""
    applied_log.insert(connection, [applied_log.new_row(connection, revision, direction, "repaired",
                                                        started_at=applied_log.utc_now(), **values)])


def _live_schema(connection: Connection) -> dict[str, Any]:
    """What check --database compares (defaults, enum values and CHECKs included): inspection.schema_compare."""
    from project.core.inspection import schema_compare

    try:
        return schema_compare.live_schema(connection)
    finally:
        applied_log.end_transaction(connection)


def _commit(connection: Connection) -> None:
    if connection.in_transaction():
        connection.commit()
