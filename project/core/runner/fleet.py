"""The fleet: the application instances running now, each with the head of the history its code carries, and
the gate that keeps `migrate` from applying a contract revision while one of them runs code older than it
(docs/phases.md).

`migrate` creates the table (ensure); each instance keeps its row fresh from the app's lifespan
(project.core.serving.fleet): written on start and every FLEET_HEARTBEAT seconds, deleted on a clean shutdown.
A row not refreshed for MISSED_BEATS of its own intervals is a crashed instance: the gate ignores it, and the
next instance to start deletes it. The times are the instances' clocks and the migrating host's: they must
agree to well within an interval (NTP does).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from alembic.script import ScriptDirectory
from sqlalchemy import Column, Connection, Double, Integer, MetaData, String, Table, delete, inspect, select, update

from project.core.bookkeeping import FLEET_TABLE
from project.core.db import UTCDateTime
from project.core.history.phases import CONTRACT, declared_phase
from project.core.history.plan import Plan, Step
from project.core.history.scripts import lookup

MISSED_BEATS = 3  # heartbeats an instance may miss before it counts as gone

metadata = MetaData()
fleet_table = Table(
    FLEET_TABLE,
    metadata,
    Column("instance_id", String(64), primary_key=True),  # a primary key: Galera replicates only such tables
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("head", String(255)),  # the heads of the code's history, comma-separated; NULL: no revision yet
    Column("started_at", UTCDateTime(), nullable=False),
    Column("last_seen", UTCDateTime(), nullable=False),
    Column("heartbeat", Double, nullable=False),  # its interval in seconds: it ages out after MISSED_BEATS of them
)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Instance:
    instance_id: str
    host: str
    pid: int
    head: str | None
    started_at: dt.datetime
    last_seen: dt.datetime
    heartbeat: float

    @property
    def heads(self) -> tuple[str, ...]:
        return tuple(self.head.split(",")) if self.head else ()

    def alive(self, now: dt.datetime) -> bool:
        return now - self.last_seen <= dt.timedelta(seconds=MISSED_BEATS * self.heartbeat)

    def describe(self, now: dt.datetime) -> str:
        seen = max(0, round((now - self.last_seen).total_seconds()))
        return f"{self.host} pid {self.pid} at {self.head or 'zero'} (last seen {seen}s ago)"


# --- the table: migrate creates it -------------------------------------------------------------------------


def ensure(connection: Connection) -> None:
    """Create the fleet table when the database lacks it. `migrate` calls it, as the schema's owner and under the
    migration lock (no two run it at once): the gate then always has its table, and the application's database
    user needs only to write rows (SELECT, INSERT, UPDATE, DELETE), never CREATE."""
    if not exists(connection):
        with connection.begin():
            metadata.create_all(connection, checkfirst=False)


def offline_create(dialect_name: str) -> str:
    """ensure() in a deploy script (`migrate --sql`): the table's CREATE TABLE IF NOT EXISTS for the engine."""
    from sqlalchemy import make_url
    from sqlalchemy.schema import CreateTable

    dialect = make_url(f"{'mysql' if dialect_name == 'mariadb' else dialect_name}://").get_dialect()()
    return str(CreateTable(fleet_table, if_not_exists=True).compile(dialect=dialect)).strip()


def exists(connection: Connection) -> bool:
    try:
        return inspect(connection).has_table(FLEET_TABLE)
    finally:
        _end(connection)


# --- the instance's side: its own row ----------------------------------------------------------------------


def join(connection: Connection, instance: Instance) -> None:
    """Insert the row of an instance that starts (a new id: no row can be there). Not beat()'s UPDATE first: on
    MariaDB an UPDATE that finds no row locks the gap where the row would go, and two instances starting
    together then deadlock on their INSERTs (error 1213: one of them stayed out of the fleet, unseen by the
    gate, until its next beat)."""
    instance.last_seen = utc_now()
    with connection.begin():
        connection.execute(fleet_table.insert().values(**vars(instance)))


def beat(connection: Connection, instance: Instance) -> None:
    """Refresh the instance's row (one UPDATE), inserting it when it is not there (its first beat, or after
    another instance deleted it as aged out). Only this process writes its row: no race between the two."""
    instance.last_seen = utc_now()
    c = fleet_table.c
    with connection.begin():
        refreshed = connection.execute(update(fleet_table).where(c.instance_id == instance.instance_id)
                                       .values(last_seen=instance.last_seen, head=instance.head))
        if refreshed.rowcount == 0:
            connection.execute(fleet_table.insert().values(**vars(instance)))


def leave(connection: Connection, instance_id: str) -> None:
    with connection.begin():
        connection.execute(delete(fleet_table).where(fleet_table.c.instance_id == instance_id))


def forget_gone(connection: Connection) -> list[Instance]:
    """Delete the rows of instances that stopped beating (killed, crashed); returns them."""
    now = utc_now()
    gone = [i for i in read(connection) if not i.alive(now)]
    if gone:
        with connection.begin():
            connection.execute(delete(fleet_table).where(fleet_table.c.instance_id.in_([i.instance_id for i in gone])))
    return gone


# --- migrate's side: who runs what --------------------------------------------------------------------------


def read(connection: Connection) -> list[Instance]:
    """Every row of the fleet table, oldest start first; [] when the database has none."""
    if not exists(connection):
        return []
    try:
        return [Instance(*row) for row in connection.execute(select(*fleet_table.c).order_by(
            fleet_table.c.started_at, fleet_table.c.instance_id))]
    finally:
        _end(connection)


def live(connection: Connection) -> list[Instance]:
    now = utc_now()
    return [i for i in read(connection) if i.alive(now)]


@dataclass
class Held:
    """The first contract revision the plan stops before, the live instances whose code is older than it, and
    every step held back with it (it and what comes after it)."""

    step: Step
    instances: list[Instance]
    steps: list[Step]

    def describe(self) -> str:
        now = utc_now()
        return "; ".join(i.describe(now) for i in self.instances)


def hold_back(connection: Connection, script: ScriptDirectory, plan: Plan,
              on_held: Callable[[Held], None] | None = None) -> Plan:
    """`plan` up to the first contract revision that a live instance's code does not carry: its old shape is
    still needed. The whole plan when none waits, when the plan goes backwards, or when its revisions declare
    no phase (the fleet table is then not even read). MigrationError for a phase that is not one."""
    held = waiting(connection, script, plan)
    if held is None:
        return plan
    if on_held is not None:
        on_held(held)
    kept = plan.steps[:len(plan.steps) - len(held.steps)]
    heads = tuple(h.strip() for h in (plan.current or "").split(",") if h.strip())
    target = kept[-1].revision if kept else (heads[0] if len(heads) == 1 else None)
    return Plan(plan.current, target, kept, plan.script)


def waiting(connection: Connection, script: ScriptDirectory, plan: Plan) -> Held | None:
    """What hold_back would hold back of `plan` on this database now (`migrate --plan` shows it)."""
    contracts = [index for index, step in enumerate(plan.steps) if declared_phase(step.script) == CONTRACT]
    if not contracts or not plan.forwards:
        return None
    instances = live(connection)
    carried: dict[tuple[str, ...], set[str] | None] = {}
    for index in contracts:
        step = plan.steps[index]
        behind = [i for i in instances if step.revision not in (_carried(script, i.heads, carried) or ())]
        if behind:
            return Held(step, behind, plan.steps[index:])
    return None


def _carried(script: ScriptDirectory, heads: tuple[str, ...],
             cache: dict[tuple[str, ...], set[str] | None]) -> set[str] | None:
    """The revisions code at `heads` carries; None when a head is not in this history (unknown code: it
    counts as older, so that nothing it may need is contracted away)."""
    if heads not in cache:
        known = all(lookup(script, head) is not None for head in heads)
        cache[heads] = {r.revision for r in script.iterate_revisions(heads, "base")} if known else None
    return cache[heads]


def describe_heads(script: ScriptDirectory) -> str | None:
    """What an instance records as its code's head: the history's heads, comma-separated; None when empty."""
    heads = sorted(script.get_heads())
    return ",".join(heads) if heads else None


def _end(connection: Connection) -> None:
    if connection.in_transaction():
        connection.rollback()
