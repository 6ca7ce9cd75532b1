"""/health (liveness) and /health/ready (readiness: the database answers and is at head).

Readiness must stay cheap under a load balancer polling it: the version files are read once at
start-up (MigrationState), and each request runs one small query on the app's pooled engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alembic.script import ScriptDirectory
from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from project.core import migrator

router = APIRouter(prefix="/health", tags=["health"])


@dataclass(frozen=True)
class MigrationState:
    """The migration history as this process knows it: loaded once, then read from memory."""

    script: ScriptDirectory
    head: str | None
    problem: str | None = None

    @classmethod
    def load(cls, settings: Any = None) -> MigrationState:
        script = migrator.script_directory(migrator.alembic_config(settings))
        try:
            # single_head builds the revision map; ScriptDirectory keeps it for later requests.
            return cls(script, migrator.single_head(script))
        except migrator.MigrationError as exc:
            return cls(script, None, str(exc))

    def pending(self, heads: tuple[str, ...]) -> int:
        """How many revisions stand between `heads` and the head (MigrationError if unknown)."""
        if self.head is None:
            raise migrator.MigrationError(self.problem or "no head")
        return len(migrator.make_plan(self.script, heads, self.head).steps)


def current_revisions(engine: Engine | AsyncEngine) -> tuple[str, ...]:
    """The rows of alembic_version; () when the table does not exist yet (nothing applied)."""
    if isinstance(engine, AsyncEngine):
        # ready() runs in a worker thread; an async engine's connections belong to the event loop.
        from anyio import from_thread

        return from_thread.run(_current_revisions_async, engine)
    with engine.connect() as connection:
        return _read_versions(connection)


async def _current_revisions_async(engine: AsyncEngine) -> tuple[str, ...]:
    async with engine.connect() as connection:
        return await connection.run_sync(_read_versions)


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
    state: MigrationState = request.app.state.migrations
    body: dict[str, Any] = {"current": None, "head": state.head, "pending": None}
    try:
        heads = current_revisions(request.app.state.engine)
    except DBAPIError as exc:
        from project.core.errors import describe

        body.update(status="database unavailable", detail=describe(exc, request.app.state.settings)[0])
        return JSONResponse(body, status.HTTP_503_SERVICE_UNAVAILABLE)
    body["current"] = ", ".join(heads) if heads else None
    try:
        body["pending"] = state.pending(heads)
    except migrator.MigrationError as exc:
        body.update(status="unknown migration state", detail=str(exc))
        return JSONResponse(body, status.HTTP_503_SERVICE_UNAVAILABLE)
    if body["pending"]:
        body["status"] = "migrations pending"
        return JSONResponse(body, status.HTTP_503_SERVICE_UNAVAILABLE)
    body["status"] = "ready"
    return JSONResponse(body, status.HTTP_200_OK)
