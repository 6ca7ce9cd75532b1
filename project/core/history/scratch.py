"""Scratch SQLite databases brought to a revision of the history, with a cache of the replay.

makemigrations, check and SQLite's offline SQL all need "the schema as the history builds it" with
no server: a fresh SQLite database on which the version files have run up to some revision. Replaying
a long history for each answer is what made them slow, so the replayed database is kept in a cache
(`.cache/scratch/` at the project root), keyed by everything the replay depends on: the text of the
version files and env.py, the target revision, and the Alembic and SQLAlchemy versions. A hit is
restored with sqlite3's backup API, which copies pages and runs none of the migrations again.
A cache that cannot be written (read-only checkout) is skipped, never an error.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from project.core.conf import cache_dir
from project.core.errors import MigrationError

CACHE_DIR: Path | None = None  # default: <BASE_DIR>/.cache/scratch
KEEP = 32  # cached databases kept; the oldest go first


class ScratchReplayError(MigrationError):
    """A version file failed while the history was replayed into a scratch SQLite database."""


@contextmanager
def scratch_sqlite(settings: Any = None, revision: str | None = None) -> Iterator[Any]:
    """A connection to a fresh in-memory SQLite database at `revision` (None: empty, nothing run).

    The database is set up as real runs set SQLite up (project.core.db). `settings` only chooses the
    migrations directory (MIGRATIONS_DIR); its database is never used.
    """
    from project.core.db import create_engine_for

    engine = create_engine_for("sqlite://")
    try:
        with engine.connect() as connection:
            if revision is not None:
                _bring_to(connection, settings, revision)
            yield connection
    finally:
        engine.dispose()


def _bring_to(connection: Any, settings: Any, revision: str) -> None:
    from alembic import command

    from project.core.errors import cause_of
    from project.core.history.plan import describe_step, failed_step
    from project.core.history.scripts import alembic_config, script_directory

    cfg = alembic_config(settings, connection=connection)
    cached = (CACHE_DIR or cache_dir(settings) / "scratch") / f"{cache_key(cfg, revision)}.sqlite3"
    raw = connection.connection.dbapi_connection
    if cached.exists():
        try:
            with _closing(sqlite3.connect(cached)) as source:
                source.backup(raw)
            os.utime(cached)  # recently used: kept longest
            return
        except sqlite3.Error:
            cached.unlink(missing_ok=True)  # a damaged entry: replay instead
    done: list[Any] = []
    cfg.attributes["configure_options"]["on_version_apply"] = lambda **_: done.append(1)
    from alembic.util.exc import CommandError as AlembicCommandError

    try:
        command.upgrade(cfg, revision)
    except AlembicCommandError:
        raise  # about the target, not a version file
    except Exception as exc:
        # The user's database is not involved: say so, and which version file failed where.
        step = failed_step(script_directory(cfg), None, revision, len(done))
        raise ScratchReplayError(
            f"Replaying the history in a scratch SQLite database (your database is not touched) failed at "
            f"{describe_step(step)}: {cause_of(exc)}. The version file must run on a fresh "
            "SQLite database: fix it (guard dialect-specific code)."
        ) from exc
    if connection.in_transaction():
        connection.commit()
    _store(raw, cached)


def cache_key(cfg: Any, revision: str) -> str:
    import alembic
    import sqlalchemy

    location = Path(cfg.get_main_option("script_location"))
    digest = hashlib.sha256(f"{revision}\0{alembic.__version__}\0{sqlalchemy.__version__}".encode())
    for path in [location / "env.py", *sorted((location / "versions").glob("*.py"))]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:32]


def _store(raw: sqlite3.Connection, cached: Path) -> None:
    tmp: Path | None = None
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=cached.parent, suffix=".tmp")
        os.close(fd)
        tmp = Path(name)
        with _closing(sqlite3.connect(tmp)) as target:
            raw.backup(target)
        os.replace(tmp, cached)  # atomic: a concurrent reader sees the whole file or none
        _evict(cached.parent)
    except (OSError, sqlite3.Error):
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def _evict(directory: Path) -> None:
    entries = sorted(directory.glob("*.sqlite3"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[KEEP:]:
        old.unlink(missing_ok=True)


@contextmanager
def _closing(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    try:
        yield conn
    finally:
        conn.close()
