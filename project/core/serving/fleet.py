"""The app instance's row in the fleet table (project.core.runner.fleet), kept from the lifespan: written on
start, every FLEET_HEARTBEAT seconds (default 30; 0 turns the fleet off), deleted on a clean shutdown.

Each beat is one UPDATE on a pooled connection of the app's own engine: on an AsyncEngine through run_sync (the
event loop awaits the driver), on an Engine in a worker thread; the event loop never blocks on it. The fleet is
advice to `migrate`, never a reason for the app not to serve: a database error is logged as a warning and the
instance keeps serving (it beats again at the next interval).
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

    async def start(self) -> None:
        """Create the table if needed, forget instances that stopped beating, write this one's row."""
        if await self._run(self._join):
            self.task = asyncio.create_task(self._beat_forever(), name="fleet heartbeat")

    async def leave(self) -> None:
        """A clean shutdown: stop beating and delete the row, so that migrate need not wait for it to age out."""
        if self.task is None:
            return
        self.stopping.set()
        await self.task  # a beat under way ends first: it cannot write the row again after the DELETE
        await self._run(lambda connection: fleet.leave(connection, self.instance.instance_id))

    async def _beat_forever(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self.stopping.wait(), self.instance.heartbeat)
                return
            except TimeoutError:
                await self._run(lambda connection: fleet.beat(connection, self.instance))

    def _join(self, connection: Any) -> None:
        fleet.ensure(connection)
        for gone in fleet.forget_gone(connection):
            log.info("fleet: forgot %s, which stopped beating", gone.describe(fleet.utc_now()))
        fleet.beat(connection, self.instance)

    async def _run(self, work: Any) -> bool:
        """`work(connection)` on a connection of the app's pool; False (logged) when it failed."""
        try:
            if isinstance(self.engine, AsyncEngine):
                async with self.engine.connect() as connection:
                    await connection.run_sync(work)
            else:
                await run_in_threadpool(_on, self.engine, work)
        except Exception as exc:  # advice, not service: see the module's docstring
            from project.core.errors import describe

            log.warning("fleet: %s (table %s): migrate cannot see this instance", describe(exc, self.settings)[0],
                        FLEET_TABLE)
            return False
        return True


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
