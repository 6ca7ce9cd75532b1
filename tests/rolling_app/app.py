"""`rolling_app.app:app`: the items API of release 1 or 2 (settings.RELEASE), with the project's /health routes
and fleet membership, as an application built on the tool has them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from project.core import db
from project.core.conf import load_settings
from project.core.serving import fleet, health

settings = load_settings()
RELEASE = int(settings.RELEASE)
metadata = sa.MetaData()
# What each release's code knows of the table: release 1 reads and writes legacy, release 2 note.
items = sa.Table(
    "items", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("body", sa.String(200), nullable=False),
    sa.Column("legacy", sa.String(200)) if RELEASE == 1 else sa.Column("note", sa.String(200)),
)
extra = "legacy" if RELEASE == 1 else "note"


class Item(BaseModel):
    body: str


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.settings = settings
    app.state.engine = db.engine_from_settings(settings, sqlite_begin=db.APP_SQLITE_BEGIN)
    app.state.migrations = await run_in_threadpool(health.MigrationState.load, settings)
    membership = await fleet.join(settings, app.state.migrations.script, app.state.engine)
    app.state.fleet = membership  # /health/ready: a newer release's expand revisions keep a member ready
    try:
        yield
    finally:
        await membership.leave()
        app.state.engine.dispose()


app = FastAPI(lifespan=lifespan)
app.include_router(health.router)


@app.post("/items")
def create(item: Item) -> dict[str, object]:
    with app.state.engine.begin() as connection:
        new_id = connection.execute(items.insert().values(body=item.body, **{extra: item.body})).inserted_primary_key[0]
    return {"id": new_id, "release": RELEASE}


@app.get("/items/{item_id}")
def read(item_id: int) -> dict[str, object]:
    with app.state.engine.connect() as connection:
        row = connection.execute(sa.select(items).where(items.c.id == item_id)).first()
    if row is None:
        raise HTTPException(404)
    return {**row._mapping, "release": RELEASE}
