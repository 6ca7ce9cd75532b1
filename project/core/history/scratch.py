"""Scratch SQLite databases brought to a revision of the history, with a cache of the replay.

makemigrations, check and SQLite's offline SQL all need "the schema as the history builds it" with
no server: a fresh SQLite database on which the version files have run up to some revision. Replaying
a long history for each answer is what made them slow, so the replayed database is kept in a cache
(`.cache/scratch/` at the project root), keyed by everything the replay depends on: the text of the
version files and env.py, the target revision, and the Alembic and SQLAlchemy versions. A hit is
restored with sqlite3's backup API, which copies pages and runs none of the migrations again.
A cache that cannot be written (read-only checkout) is skipped, never an error.

SQLite's reflection loses what other engines keep: a `DateTime(timezone=True)` reads back as DATETIME, a
`LargeBinary` as BLOB, an Enum as VARCHAR, `server_default=sa.false()` as the text `0`. A file written from that
(a downgrade that re-creates a dropped table or column) would then fail on PostgreSQL. So while the history
replays, the types and server defaults its operations gave each column are recorded, as the operations run
(the DDL constructs Alembic executes carry the very objects the version file built), and laid back over SQLite's
reflection (SQLAlchemy's `column_reflect` event): autogenerate, and Alembic's own batch rebuilds during the replay,
see the history's types. A record is used only while SQLite still holds what it describes (the same declared
type and default text): a column changed since by raw SQL reads as SQLite has it, as before. docs/portable.md
says why this design rather than a schema built from the operations alone.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

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
    _listen_for_history(engine)
    try:
        with engine.connect() as connection:
            connection.info[_COLUMNS] = {}
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
                records = _load_records(source)
                source.backup(raw)
            raw.execute(f"DROP TABLE {_RECORDS_TABLE}")  # the cache's, not the history's
            connection.info[_COLUMNS] = records
            os.utime(cached)  # recently used: kept longest
            return
        except sqlite3.Error:
            cached.unlink(missing_ok=True)  # damaged, or written without the records: replay instead
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
        # A name the file uses without importing it (a type of the application's, as older makemigrations wrote
        # them) fails on every engine: say that, not "guard dialect-specific code".
        hint = ("import what it names, or write the type as what it is on the engines (docs/portable.md)"
                if isinstance(exc, NameError | ImportError) else "guard dialect-specific code")
        raise ScratchReplayError(
            f"Replaying the history in a scratch SQLite database (your database is not touched) failed at "
            f"{describe_step(step)}: {cause_of(exc)}. The version file must run on a fresh "
            f"SQLite database: fix it ({hint})."
        ) from exc
    if connection.in_transaction():
        connection.commit()
    _store(raw, cached, connection.info[_COLUMNS])


def cache_key(cfg: Any, revision: str) -> str:
    import alembic
    import sqlalchemy

    location = Path(cfg.get_main_option("script_location"))
    digest = hashlib.sha256(f"{revision}\0{alembic.__version__}\0{sqlalchemy.__version__}".encode())
    for path in [location / "env.py", *sorted((location / "versions").glob("*.py"))]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:32]


def _store(raw: sqlite3.Connection, cached: Path, records: dict[tuple[str, str], HistoryColumn]) -> None:
    tmp: Path | None = None
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=cached.parent, suffix=".tmp")
        os.close(fd)
        tmp = Path(name)
        with _closing(sqlite3.connect(tmp)) as target:
            raw.backup(target)
            _store_records(target, records)
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


# --- the types and server defaults the history gave each column --------------------------------------------------

# Keys of a reflected Column's `info` (set on scratch connections only):
HISTORY_TYPE = "fastapi_manage.history_type"  # True: the column's type is the one the history gave it
HISTORY_DEFAULT = "fastapi_manage.history_default"  # the server default the history gave it (a DefaultClause's arg)
_REFLECTED_TYPE = "fastapi_manage.reflected_type"  # the type SQLite's reflection made, when none is recorded
_COLUMNS = "fastapi_manage.history_columns"  # the scratch connection's records, in its `info`


def is_scratch(connection: Any) -> bool:
    """Whether `connection` is a scratch database of this module (a replay of the history), not the user's."""
    return _COLUMNS in getattr(connection, "info", {})
_RECORDS_TABLE = "fastapi_manage_history_columns"  # the records inside a cached database file


class HistoryColumn(NamedTuple):
    """What the history's operations gave one column."""

    type: Any  # the TypeEngine; None when not known (the column came from raw SQL)
    default_known: bool
    server_default: Any  # the DefaultClause argument as written (str, sa.text(), sa.false(), sa.func...) or None


def history_columns(connection: Any) -> dict[tuple[str, str], HistoryColumn]:
    """(table, column) -> what the history gave it, for a scratch connection ({} for any other)."""
    records: dict[tuple[str, str], HistoryColumn] = connection.info.get(_COLUMNS, {})
    return records


def use_history_columns(connection: Any, records: dict[tuple[str, str], HistoryColumn]) -> None:
    """Let a copy of a scratch database (squash_writer's snapshot) reflect with the scratch connection's records."""
    connection.info[_COLUMNS] = dict(records)


def history_default(connection: Any, table: str, column: str, reflected: Any) -> Any:
    """The server default the history gave table.column, when SQLite still holds it (`reflected`: the reflected
    column's server_default); `reflected` itself otherwise."""
    record = history_columns(connection).get((table, column))
    text = getattr(getattr(reflected, "arg", None), "text", None)
    if record is not None and record.default_known and record.server_default is not None \
            and _same_default(record, text):
        from sqlalchemy import DefaultClause

        return DefaultClause(record.server_default)
    return reflected


def _listen_for_history(engine: Any) -> None:
    from sqlalchemy import Table, event

    event.listen(engine, "after_execute", _record)
    if not event.contains(Table, "column_reflect", _overlay):
        # Every Table's reflection; it does nothing unless the connection is a scratch one.
        event.listen(Table, "column_reflect", _overlay)


def _record(connection: Any, element: Any, *_: Any) -> None:
    """After each statement on a scratch connection: what it did to a column's type or server default."""
    from alembic.ddl import base as ddl
    from sqlalchemy.schema import CreateTable, DropTable

    records = connection.info.get(_COLUMNS)
    if records is None:
        return
    if isinstance(element, CreateTable):
        table = element.element
        _forget(records, table.name)
        for column in table.columns:
            records[(table.name, column.name)] = _recorded(column)
    elif isinstance(element, DropTable):
        _forget(records, element.element.name)
    elif isinstance(element, ddl.RenameTable):
        for key in [k for k in records if k[0] == element.table_name]:
            records[(element.new_table_name, key[1])] = records.pop(key)
    elif isinstance(element, ddl.AddColumn):
        records[(element.table_name, element.column.name)] = _recorded(element.column)
    elif isinstance(element, ddl.DropColumn):
        records.pop((element.table_name, element.column.name), None)
    elif isinstance(element, ddl.ColumnName):
        if (element.table_name, element.column_name) in records:
            records[(element.table_name, element.newname)] = records.pop((element.table_name, element.column_name))
    elif isinstance(element, ddl.ColumnType | ddl.ColumnDefault):
        # Not emitted on SQLite (a batch rebuild does it), but a history may run them under a dialect guard.
        key = (element.table_name, element.column_name)
        record = records.get(key, HistoryColumn(None, False, None))
        if isinstance(element, ddl.ColumnType):
            records[key] = record._replace(type=element.type_)
        else:
            records[key] = record._replace(default_known=True, server_default=_default_arg(element.default))


def _forget(records: dict[tuple[str, str], HistoryColumn], table: str) -> None:
    for key in [k for k in records if k[0] == table]:
        del records[key]


def _recorded(column: Any) -> HistoryColumn:
    """A column as a CREATE TABLE or ADD COLUMN made it. In a batch rebuild the columns come from reflection
    (through `_overlay`): what the history gave them rides along in their `info`."""
    from sqlalchemy import DefaultClause

    type_ = None if column.info.get(_REFLECTED_TYPE) is column.type else column.type
    default = column.server_default
    if default is None:
        return HistoryColumn(type_, True, None)
    if isinstance(default, DefaultClause) and not default.reflected:
        return HistoryColumn(type_, True, default.arg)
    if isinstance(default, DefaultClause) and HISTORY_DEFAULT in column.info:
        return HistoryColumn(type_, True, column.info[HISTORY_DEFAULT])
    return HistoryColumn(type_, False, None)


def _default_arg(default: Any) -> Any:
    from sqlalchemy import DefaultClause

    return default.arg if isinstance(default, DefaultClause) else (default or None)


def _overlay(inspector: Any, table: Any, column_info: dict[str, Any]) -> None:
    """`column_reflect` on a scratch connection: the history's type (and, in `info`, its server default) for a
    column whose record SQLite still agrees with."""
    from sqlalchemy import Connection

    bind = getattr(inspector, "bind", None)
    records = bind.info.get(_COLUMNS) if isinstance(bind, Connection) else None
    if records is None:
        return
    record = records.get((table.name, column_info["name"]))
    info = dict(column_info.get("info") or {})
    reflected = column_info["type"]
    if record is not None and record.type is not None \
            and _sqlite_type_text(record.type) == _sqlite_type_text(reflected) is not None:
        column_info["type"] = record.type.copy()
        info[HISTORY_TYPE] = True
    else:
        info[_REFLECTED_TYPE] = reflected
    if record is not None and record.default_known and record.server_default is not None \
            and _same_default(record, column_info.get("default")):
        info[HISTORY_DEFAULT] = record.server_default
    column_info["info"] = info


def _sqlite_type_text(type_: Any) -> str | None:
    """The declared type SQLite stores for `type_` (CREATE TABLE's text, which SQLite keeps verbatim)."""
    try:
        return "".join(str(type_.compile(dialect=_sqlite_dialect())).upper().split())
    except Exception:  # NullType, or a type SQLite cannot render: no match, whatever the record says
        return None


def _same_default(record: HistoryColumn, reflected_text: str | None) -> bool:
    """Whether SQLite's default text is what the record's default renders to on SQLite."""
    import sqlalchemy as sa

    if reflected_text is None:
        return False
    dialect = _sqlite_dialect()
    default = record.server_default
    column = sa.Column("c", record.type if record.type is not None else sa.String(), server_default=(
        default if isinstance(default, str | sa.TextClause | sa.ColumnElement) else str(default)))
    try:
        rendered = dialect.ddl_compiler(dialect, None).get_column_default_string(column)
    except Exception:
        return False
    return _bare(rendered) == _bare(reflected_text)


def _bare(text: str | None) -> str:
    """Default text without the parentheses and spacing SQLite and Alembic add or drop."""
    text = (text or "").strip()
    while text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    return text


def _sqlite_dialect() -> Any:
    global _DIALECT
    if _DIALECT is None:
        from sqlalchemy import make_url

        _DIALECT = make_url("sqlite://").get_dialect()()
    return _DIALECT


_DIALECT: Any = None


def _store_records(target: sqlite3.Connection, records: dict[tuple[str, str], HistoryColumn]) -> None:
    """The records, pickled one by one, in a table of the cached file (one file: they cannot disagree). A record
    that cannot be pickled (a type holding a lambda) is left out: that column reads as SQLite has it."""
    rows = []
    for (table, column), record in records.items():
        try:
            rows.append((table, column, pickle.dumps(tuple(record))))
        except Exception:  # any pickling failure only costs that column its record
            continue
    target.execute(f"CREATE TABLE {_RECORDS_TABLE} (table_name TEXT, column_name TEXT, record BLOB)")
    target.executemany(f"INSERT INTO {_RECORDS_TABLE} VALUES (?, ?, ?)", rows)
    target.commit()


def _load_records(source: sqlite3.Connection) -> dict[tuple[str, str], HistoryColumn]:
    """The records of a cached file (raises sqlite3.Error when it has none: an entry to replay)."""
    records = {}
    for table, column, data in source.execute(f"SELECT table_name, column_name, record FROM {_RECORDS_TABLE}"):
        try:
            # Written by _store_records into the project's own cache directory, as the databases next to them.
            records[(table, column)] = HistoryColumn(*pickle.loads(data))
        except Exception:  # a type whose module is gone: that column reads as SQLite has it
            continue
    return records
