"""Two columns kept in step by the database while a column is renamed without breaking running code
(docs/phases.md, "Rename a column without breaking running code").

    from project.core.history.column_sync import sync_columns

    def upgrade() -> None:
        sync_columns("items", "legacy", "note")

During a rolling deploy the code before the rename writes only the old column and the code after it only the
new one, on the same rows. Without help the rows one release writes have NULL in the column the other release
reads. `sync_columns` makes the database copy each write across: an INSERT that leaves one of the two NULL gets
it from the other, and an UPDATE that changes one of them (and not the other) changes the other too.
`drop_column_sync` removes it, in the contract revision, before the old column is dropped.

Triggers, one way per engine, the same behaviour:
- PostgreSQL: a trigger function (PL/pgSQL) and a BEFORE INSERT OR UPDATE row trigger that sets NEW's columns;
- MySQL/MariaDB: BEFORE INSERT and BEFORE UPDATE row triggers, each one `SET NEW.a = ..., NEW.b = ...` statement
  (no BEGIN ... END, so an offline script needs no DELIMITER);
- SQLite: AFTER INSERT and AFTER UPDATE OF <column> triggers that UPDATE the row by its rowid (SQLite's row
  triggers cannot assign NEW); the inner UPDATE fires no trigger (SQLite's recursive_triggers is off by default,
  and each trigger's WHEN stops a second round when it is on).

Custom Alembic operations (as history.backfill's): what records a revision's operations without running them
(check, the phase inference, CONFIRM_DESTRUCTIVE's inspection) sees them as themselves, neither destructive nor
unreadable SQL; online and offline (`migrate --sql`) they emit the engine's statements.
"""

from __future__ import annotations

import hashlib
from typing import Any

from alembic.operations import MigrateOperation, Operations

# Trigger and function names: at most 63 characters on PostgreSQL, 64 on MariaDB, with the suffixes below.
_NAME_LIMIT = 48


def sync_columns(table: str, old: str, new: str) -> None:
    """Keep `table`.`old` and `table`.`new` in step on every write, until drop_column_sync."""
    from alembic import op

    op.invoke(SyncColumnsOp(table, old, new))


def drop_column_sync(table: str, old: str, new: str) -> None:
    """Stop keeping the two columns in step (the contract revision of the rename, before the old column goes)."""
    from alembic import op

    op.invoke(DropColumnSyncOp(table, old, new))


class SyncColumnsOp(MigrateOperation):
    def __init__(self, table_name: str, old: str, new: str) -> None:
        self.table_name, self.old, self.new = table_name, old, new

    def reverse(self) -> DropColumnSyncOp:
        return DropColumnSyncOp(self.table_name, self.old, self.new)


class DropColumnSyncOp(MigrateOperation):
    def __init__(self, table_name: str, old: str, new: str) -> None:
        self.table_name, self.old, self.new = table_name, old, new

    def reverse(self) -> SyncColumnsOp:
        return SyncColumnsOp(self.table_name, self.old, self.new)


@Operations.implementation_for(SyncColumnsOp)
def _create(operations: Operations, operation: SyncColumnsOp) -> None:
    for statement in create_statements(operations.get_context().dialect, operation.table_name, operation.old,
                                       operation.new):
        operations.execute(statement)


@Operations.implementation_for(DropColumnSyncOp)
def _drop(operations: Operations, operation: DropColumnSyncOp) -> None:
    for statement in drop_statements(operations.get_context().dialect, operation.table_name, operation.old,
                                     operation.new):
        operations.execute(statement)


def base_name(table: str, old: str, new: str) -> str:
    """The stem of the trigger (and function) names: readable, cut with a hash when long."""
    name = f"sync_{table}_{old}_{new}"
    if len(name) > _NAME_LIMIT:
        name = f"{name[:_NAME_LIMIT - 9]}_{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    return name


def create_statements(dialect: Any, table: str, old: str, new: str) -> list[str]:
    """The statements that make the database keep the columns in step, for `dialect` (a SQLAlchemy Dialect)."""
    q = dialect.identifier_preparer.quote
    t, o, n, name = q(table), q(old), q(new), base_name(table, old, new)
    if dialect.name == "postgresql":
        function = f"""CREATE FUNCTION {q(name)}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.{n} := COALESCE(NEW.{n}, NEW.{o});
        NEW.{o} := COALESCE(NEW.{o}, NEW.{n});
    ELSIF NEW.{o} IS DISTINCT FROM OLD.{o} AND NEW.{n} IS NOT DISTINCT FROM OLD.{n} THEN
        NEW.{n} := NEW.{o};
    ELSIF NEW.{n} IS DISTINCT FROM OLD.{n} AND NEW.{o} IS NOT DISTINCT FROM OLD.{o} THEN
        NEW.{o} := NEW.{n};
    END IF;
    RETURN NEW;
END
$$"""
        return [function,
                f"CREATE TRIGGER {q(name)} BEFORE INSERT OR UPDATE ON {t} FOR EACH ROW EXECUTE FUNCTION {q(name)}()"]
    if dialect.name in ("mysql", "mariadb"):
        # SET assigns left to right: the second assignment sees the first's NEW. It can only have changed NEW.n
        # when the old column changed, and then the second leaves NEW.o as it is.
        return [
            f"CREATE TRIGGER {q(name + '_ins')} BEFORE INSERT ON {t} FOR EACH ROW "
            f"SET NEW.{n} = COALESCE(NEW.{n}, NEW.{o}), NEW.{o} = COALESCE(NEW.{o}, NEW.{n})",
            f"CREATE TRIGGER {q(name + '_upd')} BEFORE UPDATE ON {t} FOR EACH ROW "
            f"SET NEW.{n} = IF(NOT (NEW.{o} <=> OLD.{o}) AND NEW.{n} <=> OLD.{n}, NEW.{o}, NEW.{n}), "
            f"NEW.{o} = IF(NOT (NEW.{n} <=> OLD.{n}) AND NEW.{o} <=> OLD.{o}, NEW.{n}, NEW.{o})",
        ]
    if dialect.name == "sqlite":
        # UPDATE's SET reads the row as it was before the statement: both COALESCEs see the inserted values.
        return [
            f"CREATE TRIGGER {q(name + '_ins')} AFTER INSERT ON {t} FOR EACH ROW "
            f"WHEN NEW.{n} IS NULL OR NEW.{o} IS NULL BEGIN "
            f"UPDATE {t} SET {n} = COALESCE({n}, {o}), {o} = COALESCE({o}, {n}) WHERE rowid = NEW.rowid; END",
            f"CREATE TRIGGER {q(name + '_old')} AFTER UPDATE OF {o} ON {t} FOR EACH ROW "
            f"WHEN NEW.{o} IS NOT OLD.{o} AND NEW.{n} IS OLD.{n} BEGIN "
            f"UPDATE {t} SET {n} = NEW.{o} WHERE rowid = NEW.rowid; END",
            f"CREATE TRIGGER {q(name + '_new')} AFTER UPDATE OF {n} ON {t} FOR EACH ROW "
            f"WHEN NEW.{n} IS NOT OLD.{n} AND NEW.{o} IS OLD.{o} BEGIN "
            f"UPDATE {t} SET {o} = NEW.{n} WHERE rowid = NEW.rowid; END",
        ]
    raise NotImplementedError(f"sync_columns({table!r}, {old!r}, {new!r}): no triggers written for {dialect.name}")


def drop_statements(dialect: Any, table: str, old: str, new: str) -> list[str]:
    """The statements that remove what create_statements made (IF EXISTS: a SQLite table rebuilt by a batch has
    lost its triggers already)."""
    q = dialect.identifier_preparer.quote
    name = base_name(table, old, new)
    if dialect.name == "postgresql":
        return [f"DROP TRIGGER IF EXISTS {q(name)} ON {q(table)}", f"DROP FUNCTION IF EXISTS {q(name)}()"]
    suffixes = {"sqlite": ("_ins", "_old", "_new")}.get(dialect.name, ("_ins", "_upd"))
    return [f"DROP TRIGGER IF EXISTS {q(name + suffix)}" for suffix in suffixes]
