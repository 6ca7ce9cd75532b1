"""A revision found half-applied where nothing records it: after an asynchronous failover, or a migrate killed in
the middle of a revision that commits part of itself.

With asynchronous replication a commit the old primary acknowledged can be missing on the standby that takes over.
PostgreSQL commits a revision's DDL with its alembic_version row and its applied-log row, so a transactional
revision is lost whole and simply runs again. A revision that commits part of itself (an autocommit_block, e.g.
CREATE INDEX CONCURRENTLY) can reach the new primary in part: what its autocommit block created is there, while
the commit that recorded it (alembic_version, the applied log) is not. Running it again blind would fail on
"already exists", or with IF NOT EXISTS apply the rest over a half the operator never saw. So, before such a
revision runs, the database is compared with the schema the history builds before and after it (the scratch
replay `repair` uses): when it already holds part of what the revision creates, migrate refuses in one line.

Only the first pending revision is checked: a failover loses a suffix of the commits, and every commit of a later
revision comes after the one that would have recorded this one. Only revisions with an autocommit block pay for
the two replays: on MySQL/MariaDB every DDL commits alone, and the applied log's `running` row (written before
the revision, see runner.interrupted) is what tells a half-run revision there.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Connection

from project.core.errors import MigrationError, mask_url
from project.core.history.plan import Plan
from project.core.runner import interrupted, timeouts

log = logging.getLogger(__name__)


def refuse_half_applied(settings: Any, connection: Connection, plan: Plan) -> None:
    """Before `plan` runs: refuse when its first revision commits part of itself and the database already holds
    part of what it creates, although neither alembic_version nor the applied log records it."""
    if not plan.steps or not plan.steps[0].forwards:
        return
    step = plan.steps[0]
    if not timeouts.commits_on_its_own(step.script):
        return
    present = _already_created(settings, connection, interrupted.recorded_before(plan, step), step.revision)
    if not present:
        return
    before = interrupted.recorded_before(plan, step)
    raise MigrationError(
        f"Revision {step} is not recorded as applied on {mask_url(connection.engine.url)} (recorded at {before}), "
        f"yet the database already has part of what it creates: {'; '.join(present)}. It commits part of itself "
        "(autocommit_block), so that part ran before: in a migrate that did not finish, or on a primary that "
        "failed over before the commit recording it reached this server. It is not run again blind: finish it by "
        f"hand and record it with `manage.py migrate {step.revision} --fake`, or undo what exists and re-run migrate."
    )


def _already_created(settings: Any, connection: Connection, before: str, revision: str) -> list[str]:
    """What the history at `revision` has and at `before` has not, that the live database has: one phrase each."""
    from project.core.inspection import schema_compare

    dialect = connection.dialect.name
    try:
        live = schema_compare.live_schema(connection)
    finally:
        if connection.in_transaction():
            connection.rollback()
    try:
        after = schema_compare.history_schema(settings, revision)
        created = schema_compare.compare(after, schema_compare.history_schema(settings, None if before == "zero"
                                                                              else before), dialect)
    except MigrationError as exc:
        # The replay needs what the revision reads to exist in the scratch database: a revision reading a table
        # the history does not create cannot be replayed. The check then cannot tell, and does not stop a deploy
        # for it: the revision runs, as it would without the check.
        log.warning("Could not check whether revision %s was partly applied before (%s): running it.",
                    revision, str(exc).rstrip("."))
        return []
    still_missing = set(schema_compare.compare(after, live, dialect))
    return [line.removesuffix(" is missing") for line in created if line not in still_missing]
