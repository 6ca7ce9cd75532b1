"""/health (liveness) and /health/ready (readiness: the database answers and is at head).

Readiness must stay cheap under a load balancer polling it: the version files are read once at
start-up (MigrationState), and each request runs one small query on the app's pooled engine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from alembic.script import ScriptDirectory
from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from project.core.errors import MigrationError
from project.core.history import applied_log
from project.core.history.phases import CONTRACT, declared_phase
from project.core.history.plan import make_plan
from project.core.history.scripts import alembic_config, cached_script_directory, lookup, resolve_revision

T = TypeVar("T")
router = APIRouter(prefix="/health", tags=["health"])
# uvicorn's own logger, as start-up migrations use: the line comes out in the server's format.
log = logging.getLogger("uvicorn.error")


@dataclass(frozen=True)
class MigrationState:
    """The migration history as this process knows it: loaded once, then read from memory."""

    script: ScriptDirectory
    head: str | None
    problem: str | None = None

    @classmethod
    def load(cls, settings: Any = None) -> MigrationState:
        # The map from the version files' cached facts (history.scripts, issue 24): a file is imported only once
        # something beyond them is used, so a start-up that finds the database at head imports none.
        script = cached_script_directory(alembic_config(settings), settings)
        try:
            # Resolving builds the revision map; ScriptDirectory keeps it for later requests. With branches,
            # "at head" means every head applied; a new project's empty history has none (zero is up to date).
            return cls(script, resolve_revision(script, "heads"))
        except MigrationError as exc:
            return cls(script, None, str(exc))

    def pending(self, heads: tuple[str, ...]) -> tuple[int, int]:
        """How many revisions stand between `heads` and the head, and how many of them this code needs: all but
        the contract revisions that no other pending revision comes after (MigrationError if unknown). Code that
        carries a contract revision works without it: `migrate` holds it back until no older instance runs
        (runner.fleet), so new instances are ready while it waits."""
        if self.problem is not None:
            raise MigrationError(self.problem)
        steps = make_plan(self.script, heads, self.head or "zero").steps
        needed = len(steps)
        while needed and steps[needed - 1].forwards and declared_phase(steps[needed - 1].script) == CONTRACT:
            needed -= 1
        return len(steps), needed


def current_revisions(engine: Engine | AsyncEngine) -> tuple[str, ...]:
    """The rows of alembic_version; () when the table does not exist yet (nothing applied)."""
    return on_engine(engine, _read_versions)


def on_engine(engine: Engine | AsyncEngine, read: Callable[[Connection], T]) -> T:
    """`read(connection)` on a connection of the app's engine, from a worker thread (ready() runs in one)."""
    if isinstance(engine, AsyncEngine):
        # An async engine's connections belong to the event loop.
        from anyio import from_thread

        return from_thread.run(_on_async, engine, read)
    with engine.connect() as connection:
        return read(connection)


async def _on_async(engine: AsyncEngine, read: Callable[[Connection], T]) -> T:
    async with engine.connect() as connection:
        return await connection.run_sync(read)


def _read_versions(connection: Connection) -> tuple[str, ...]:
    try:
        return tuple(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
    except DBAPIError:
        # Roll back before the connection goes back to the pool: PostgreSQL would refuse
        # every later statement in the aborted transaction.
        connection.rollback()
        if inspect(connection).has_table("alembic_version"):
            raise
        return ()


@router.get("", summary="Liveness: the process serves requests (no database work).")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="Readiness: 200 when the database answers and is at head, else 503.",
    responses={503: {"description": "Database unreachable or migrations pending."}},
)
def ready(request: Request) -> JSONResponse:
    """The body names status, current, head and pending only: a load balancer or any client may read it,
    so why the database failed (host, port, driver message) goes to the server log instead."""
    state: MigrationState = request.app.state.migrations
    body: dict[str, Any] = {"status": "ready", "current": None, "head": state.head, "pending": None}
    try:
        heads = current_revisions(request.app.state.engine)
    except DBAPIError as exc:
        from project.core.errors import describe

        _log_cause(request, "database unavailable", describe(exc, request.app.state.settings)[0])
        return _unavailable(body, "database unavailable")
    body["current"] = ", ".join(heads) if heads else None
    try:
        body["pending"], needed = state.pending(heads)
    except MigrationError as exc:
        if _newer_release(request, state, heads):
            body["pending"] = 0
            _log_cause(request, None, None)
            return JSONResponse(body, status.HTTP_200_OK)
        _log_cause(request, "unknown migration state", str(exc))
        return _unavailable(body, "unknown migration state")
    if needed:
        # Worth a line too: a database restored (or failed over) to an older revision stays here until migrated.
        _log_cause(request, "migrations pending", f"the database is at {body['current'] or 'zero'}, "
                   f"{body['pending']} revision(s) behind {state.head}; run migrate")
        return _unavailable(body, "migrations pending")
    _log_cause(request, None, None)
    return JSONResponse(body, status.HTTP_200_OK)


def _newer_release(request: Request, state: MigrationState, heads: tuple[str, ...]) -> bool:
    """The database is at revisions this code does not know, which `migrate` applied (the applied log says so):
    a newer release's pre-deploy migrate ran. While this instance is in the fleet (its last beat written),
    migrate applies no contract revision its code lacks (runner.fleet holds it until the instance is gone), so
    the code works on: it stays in its load balancer's rotation during the rolling deploy (docs/phases.md). A
    revision recorded by hand, or unknown to the log, stays "unknown migration state"."""
    membership = getattr(request.app.state, "fleet", None)
    if state.problem is not None or membership is None or not membership.seen:
        return False
    unknown = [head for head in heads if lookup(state.script, head) is None]
    try:
        entries = on_engine(request.app.state.engine, applied_log.read) if unknown else {}
    except (DBAPIError, MigrationError):
        return False
    return bool(unknown) and all(head in entries and entries[head].applied for head in unknown)


def _unavailable(body: dict[str, Any], why: str) -> JSONResponse:
    return JSONResponse({**body, "status": why}, status.HTTP_503_SERVICE_UNAVAILABLE)


def _log_cause(request: Request, status_text: str | None, cause: str | None) -> None:
    """One log line per new cause: a load balancer polling every second must not flood the log."""
    if cause == getattr(request.app.state, "ready_cause", None):
        return
    request.app.state.ready_cause = cause
    if cause is not None:
        log.warning("/health/ready answers 503 (%s): %s", status_text, cause)
