"""The app instance's row in the fleet table (project.core.runner.fleet), kept from the lifespan: written on
start, every FLEET_HEARTBEAT seconds (default 30; 0 turns the fleet off), deleted on a clean shutdown. The
table is migrate's to create (runner.fleet.ensure): the app's database user only writes rows.

Each beat is one UPDATE on a pooled connection of the app's own engine: on an AsyncEngine through run_sync (the
event loop awaits the driver), on an Engine in a worker thread; the event loop never blocks on it. The fleet is
advice to `migrate`, never a reason for the app not to serve: a missing table or a database error is logged
as one warning (again only when the failure changes) and the instance keeps serving, trying again at every
interval.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.concurrency import run_in_threadpool

from project.core.bookkeeping import FLEET_TABLE
from project.core.runner import fleet

log = logging.getLogger("project.core.fleet")

DEFAULT_HEARTBEAT = 30.0


class Membership:
    """This process in the fleet: its row, and the task that keeps it fresh."""

    def __init__(self, settings: Any, engine: Engine | AsyncEngine, instance: fleet.Instance):
        self.settings = settings
        self.engine = engine
        self.instance = instance
        self.task: asyncio.Task[None] | None = None
        self.stopping = asyncio.Event()
        self.joined = False  # the row was written once: later attempts refresh it
        self.problem: str | None = None  # what failed last (logged once, not at every interval)

    @property
    def seen(self) -> bool:
        """Its row was written by the last attempt: `migrate` counts it as live (project.core.serving.health)."""
        return self.joined and self.problem is None

    async def start(self) -> None:
        """Forget instances that stopped beating and write this one's row, before the app serves; then beat. When
        that fails (no table yet, no right to write it, the database away) the app serves anyway and tries again
        at every interval."""
        await self._attempt()
        self.task = asyncio.create_task(self._beat_forever(), name="fleet heartbeat")

    async def leave(self) -> None:
        """A clean shutdown: stop beating and delete the row, so that migrate need not wait for it to age out."""
        if self.task is None:
            return
        self.stopping.set()
        await self.task  # a beat under way ends first: it cannot write the row again after the DELETE
        if self.joined:
            await self._run(lambda connection: fleet.leave(connection, self.instance.instance_id))

    async def _beat_forever(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self.stopping.wait(), self.instance.heartbeat)
                return
            except TimeoutError:
                await self._attempt()

    async def _attempt(self) -> None:
        """Join, or beat once joined; one log line when the outcome changes (a failure, the first success after)."""
        problem = await self._run(self._beat if self.joined else self._join)
        if problem is not None and problem != self.problem:
            log.warning("fleet: %s: migrate cannot see this instance, and would apply a contract revision its code "
                        "still needs; the app serves on, and tries again every %gs", problem,
                        self.instance.heartbeat)
        elif problem is None and self.problem is not None:
            log.info("fleet: this instance is in table %s now: migrate sees it", FLEET_TABLE)
        self.problem = problem

    def _join(self, connection: Any) -> None:
        if not fleet.exists(connection):
            raise _Missing
        for gone in fleet.forget_gone(connection):
            log.info("fleet: forgot %s, which stopped beating", gone.describe(fleet.utc_now()))
        # The first attempt inserts (runner.fleet.join); one after a failure may find the row it wrote.
        (fleet.join if self.problem is None else fleet.beat)(connection, self.instance)
        self.joined = True

    def _beat(self, connection: Any) -> None:
        fleet.beat(connection, self.instance)

    async def _run(self, work: Any) -> str | None:
        """`work(connection)` on a connection of the app's pool; what failed (one line), or None."""
        try:
            if isinstance(self.engine, AsyncEngine):
                async with self.engine.connect() as connection:
                    await connection.run_sync(work)
            else:
                await run_in_threadpool(_on, self.engine, work)
        except _Missing:
            return f"table {FLEET_TABLE} does not exist (`manage.py migrate` creates it)"
        except Exception as exc:  # advice, not service: see the module's docstring
            from project.core.errors import describe

            return f"{describe(exc, self.settings)[0]} (table {FLEET_TABLE})"
        return None


class _Missing(Exception):
    """The fleet table is not there: migrate has not run since the tool had it."""


def _on(engine: Engine, work: Any) -> None:
    with engine.connect() as connection:
        work(connection)


async def join(settings: Any, script: Any, engine: Engine | AsyncEngine) -> Membership:
    """This instance's membership, started: `script` is the history its code carries (a ScriptDirectory),
    `engine` the app's own."""
    heartbeat = float(settings.get("FLEET_HEARTBEAT", DEFAULT_HEARTBEAT) or 0)
    now = fleet.utc_now()
    instance = fleet.Instance(uuid.uuid4().hex, socket.gethostname(), os.getpid(), fleet.describe_heads(script),
                              now, now, heartbeat)
    membership = Membership(settings, engine, instance)
    if heartbeat > 0:
        await membership.start()
    return membership
