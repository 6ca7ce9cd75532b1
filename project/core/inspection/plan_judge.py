"""What a plan's steps destroy on one database: the destructive-step policy's judgement.

inspection.destructive says what each revision destroys, creates and renames, offline, in order. Here those
findings are weighed against the plan itself (what its earlier steps created) and against the database it runs on
(what exists there before the plan), so that only what the database holds is called destroyed: `migrate` under
CONFIRM_DESTRUCTIVE refuses that, and `migrate --plan` marks it (docs/safety.md, "Safety: no surprise DROP").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from project.core.inspection.destructive import (
    Created,
    Finding,
    Renamed,
    Verdict,
    assess_revision,
    fold_name,
    split_table,
)


class Database:
    """What the database held before the plan, reflected lazily and once per question: the table names (per
    schema), a table's columns, a table's constraints and indexes, PostgreSQL's enum types; each only when a finding
    cannot be settled from the plan itself. Any error reflecting counts as "exists" (the policy then refuses, as it
    would have without looking)."""

    def __init__(self, connection: Any):
        self.connection = connection
        self._inspector: Any = None
        self._tables: dict[str | None, set[str] | None] = {}
        self._columns: dict[str, set[str] | None] = {}
        self._constraints: dict[str, dict[str, tuple[str, tuple[str, ...], str | None]] | None] = {}
        self._empty: bool | None = None
        self._types: set[str] | None = None

    def _inspect(self) -> Any:
        import sqlalchemy as sa

        if self._inspector is None:
            self._inspector = sa.inspect(self.connection)
        return self._inspector

    def done(self) -> None:
        """End the transaction reflection opened (the migration connection is handed on without one)."""
        if self._inspector is not None and self.connection.in_transaction():
            self.connection.rollback()

    def tables(self, schema: str | None = None) -> set[str] | None:
        """Folded table names of `schema` (None: the default), without the tool's own; None if unknown."""
        from project.core.bookkeeping import bookkeeping_tables

        if schema not in self._tables:
            try:
                names = set(self._inspect().get_table_names(schema=schema)) - bookkeeping_tables()
                self._tables[schema] = {fold_name(n) for n in names}
            except Exception:
                self._tables[schema] = None
        return self._tables[schema]

    def empty(self) -> bool:
        """No application table in any schema the database's users work in (PostgreSQL: every schema but the
        system ones; elsewhere the connection's database)."""
        if self._empty is None:
            schemas: list[str | None] = [None]
            if self.connection.dialect.name == "postgresql":
                try:
                    schemas += [s for s in self._inspect().get_schema_names()
                                if s != "information_schema" and not s.startswith("pg_")]
                except Exception:
                    self._empty = False
                    return False
            found = [self.tables(s) for s in schemas]
            self._empty = all(t is not None and not t for t in found)
        return self._empty

    def has_table(self, table: str) -> bool:
        schema, name = split_table(table)
        names = self.tables(schema)
        return names is None or fold_name(name) in names

    def columns(self, table: str) -> set[str] | None:
        key = fold_name(table)
        if key not in self._columns:
            schema, name = split_table(table)
            try:
                self._columns[key] = {fold_name(c["name"]) for c in self._inspect().get_columns(name, schema=schema)}
            except Exception:
                self._columns[key] = None
        return self._columns[key]

    def has_column(self, table: str, column: str) -> bool:
        columns = self.columns(table)
        return columns is None or fold_name(column) in columns

    def constraint(self, table: str, name: str) -> tuple[str, tuple[str, ...], str | None] | None:
        """(family, folded columns, folded referred table) of the constraint or index `name` on `table`."""
        key = fold_name(table)
        if key not in self._constraints:
            self._constraints[key] = self._reflect_constraints(table)
        found = self._constraints[key]
        return None if found is None else found.get(fold_name(name))

    def _reflect_constraints(self, table: str) -> dict[str, tuple[str, tuple[str, ...], str | None]] | None:
        schema, name = split_table(table)
        inspector = self._inspect()
        found: dict[str, tuple[str, tuple[str, ...], str | None]] = {}

        def cols(names: Any) -> tuple[str, ...]:
            return tuple(fold_name(c) for c in names or () if c is not None)

        try:
            pk = inspector.get_pk_constraint(name, schema=schema)
            if pk.get("name"):
                found[fold_name(pk["name"])] = ("primary", cols(pk.get("constrained_columns")), None)
            for fk in inspector.get_foreign_keys(name, schema=schema):
                if fk.get("name"):
                    found[fold_name(fk["name"])] = ("foreignkey", cols(fk["constrained_columns"]),
                                                fold_name(fk["referred_table"]))
            for index in inspector.get_indexes(name, schema=schema):
                if index.get("name"):
                    found[fold_name(index["name"])] = ("unique" if index.get("unique") else "index",
                                                   cols(index.get("column_names")), None)
            for unique in inspector.get_unique_constraints(name, schema=schema):
                if unique.get("name"):
                    found[fold_name(unique["name"])] = ("unique", cols(unique["column_names"]), None)
            for check in inspector.get_check_constraints(name, schema=schema):
                if check.get("name"):
                    found[fold_name(check["name"])] = ("check", (), None)
        except Exception:
            return None
        return found

    def has_type(self, name: str) -> bool:
        if self.connection.dialect.name != "postgresql":
            return True
        if self._types is None:
            try:
                self._types = {fold_name(e["name"]) for e in self._inspect().get_enums(schema="*")}
            except Exception:
                return True
        return fold_name(name) in self._types


@dataclass
class Judged:
    """One step of a plan, judged on one database: what it destroys there (refused under CONFIRM_DESTRUCTIVE),
    what it drops that loses nothing there and why, and whether it could not be inspected (None also when the
    database was empty: nothing in it can be lost)."""

    step: Any
    verdict: Verdict
    destroys: list[Finding] = field(default_factory=list)
    spared: list[tuple[Finding, str]] = field(default_factory=list)
    uninspectable: str | None = None


@dataclass
class _Made:
    """Where the plan made something: the revision, and the position of the effect in the plan."""

    revision: str
    at: tuple[int, int]


class _PlanState:
    """What the plan has done so far to the names it touches: created (by which revision), renamed (from which
    name the database holds), dropped."""

    def __init__(self) -> None:
        self.tables: dict[str, _Made] = {}  # folded current name -> creation
        self.columns: dict[tuple[str, str], _Made] = {}
        self.constraints: dict[tuple[str | None, str], _Made] = {}
        self.types: dict[str, _Made] = {}
        self.objects: dict[str, _Made] = {}
        self.table_origin: dict[str, str] = {}  # folded current name -> the name in the database
        self.column_origin: dict[tuple[str, str], str] = {}
        self.gone_tables: set[str] = set()
        self.gone_columns: set[tuple[str, str]] = set()

    def origin(self, table: str) -> str:
        return self.table_origin.get(fold_name(table), table)

    def column_origin_of(self, table: str, column: str) -> str:
        return self.column_origin.get((fold_name(table), fold_name(column)), column)

    def made_table(self, table: str | None) -> _Made | None:
        return self.tables.get(fold_name(table)) if table else None

    def apply(self, effect: Created | Renamed, made: _Made) -> None:
        if isinstance(effect, Created):
            table = fold_name(effect.table) if effect.table else None
            if effect.kind == "table" and table:
                self.tables[table] = made
                self.gone_tables.discard(table)
            elif effect.kind == "column" and table and effect.name:
                self.columns[(table, fold_name(effect.name))] = made
                self.gone_columns.discard((table, fold_name(effect.name)))
            elif effect.kind == "constraint" and effect.name:
                self.constraints[(table, fold_name(effect.name))] = made
                self.constraints[(None, fold_name(effect.name))] = made
            elif effect.kind == "type" and effect.name:
                self.types[fold_name(effect.name)] = made
            elif effect.name:
                self.objects[fold_name(effect.name)] = made
            return
        old, new = fold_name(effect.table), fold_name(effect.new if effect.kind == "table" else effect.table)
        if effect.kind == "table":
            if old in self.tables:
                self.tables[new] = self.tables.pop(old)
            else:
                self.table_origin[new] = self.table_origin.pop(old, effect.table)
            for key in [k for k in self.columns if k[0] == old]:
                self.columns[(new, key[1])] = self.columns.pop(key)
            for key in [k for k in self.column_origin if k[0] == old]:
                self.column_origin[(new, key[1])] = self.column_origin.pop(key)
            return
        before, after = (old, fold_name(effect.old)), (old, fold_name(effect.new))
        if before in self.columns:
            self.columns[after] = self.columns.pop(before)
        elif old not in self.tables:
            self.column_origin[after] = self.column_origin.pop(before, effect.old)

    def dropped(self, finding: Finding) -> None:
        if finding.kind == "table" and finding.table:
            self.tables.pop(fold_name(finding.table), None)
            self.gone_tables.add(fold_name(finding.table))
        elif finding.kind == "column" and finding.table and finding.column:
            key = (fold_name(finding.table), fold_name(finding.column))
            self.columns.pop(key, None)
            self.gone_columns.add(key)


def judge_plan(steps: Sequence[Any], dialect: str, database: Database | None,
               verdicts: Sequence[Verdict] | None = None) -> list[Judged]:
    """Each step of a plan with what it destroys on this database, in the plan's order.

    A finding loses nothing here, and is `spared` with the reason, when the database holds no table at all
    before the plan; when a step of the same plan (this one included, before it) created the object (a table
    created in the plan covers its columns, constraints and indexes); when the object is not in the database
    (a drop of what is not there destroys nothing); or, for a constraint or index, when the plan re-creates one
    of the same kind on the same columns (under any name) later. Everything else is destroyed: a table or
    column the database holds before the plan is refused whether or not it has rows now (rows may arrive
    before the step runs, and counting them would scan big tables). `database` None: judged without one
    (only what the plan itself settles is spared). `verdicts`: the steps' assess_revision, when the caller has
    them already.
    """
    verdicts = list(verdicts) if verdicts is not None else [assess_revision(s.script, s.forwards, dialect)
                                                            for s in steps]
    state = _PlanState()
    later: list[tuple[tuple[int, int], Created, str]] = [
        ((i, j), effect, step.revision) for i, (step, verdict) in enumerate(zip(steps, verdicts, strict=True))
        for j, effect in enumerate(verdict.effects) if isinstance(effect, Created) and effect.kind == "constraint"]
    judged: list[Judged] = []
    empty: bool | None = None

    def database_empty() -> bool:
        nonlocal empty
        if empty is None:
            empty = database is not None and database.empty()
        return empty

    for i, (step, verdict) in enumerate(zip(steps, verdicts, strict=True)):
        result = Judged(step, verdict)
        seen: set[Finding] = set()
        for j, effect in enumerate(verdict.effects):
            if not isinstance(effect, Finding):
                state.apply(effect, _Made(step.revision, (i, j)))
                continue
            if effect in seen:
                continue
            seen.add(effect)
            why = _spared(effect, (i, j), step.revision, state, database, later, database_empty)
            if why is None:
                result.destroys.append(effect)
            else:
                result.spared.append((effect, why))
            state.dropped(effect)
        if verdict.uninspectable and not database_empty():
            result.uninspectable = verdict.uninspectable
        judged.append(result)
    if database is not None:
        database.done()
    return judged


def _spared(finding: Finding, at: tuple[int, int], revision: str, state: _PlanState, database: Database | None,
            later: list[tuple[tuple[int, int], Created, str]], database_empty: Any) -> str | None:
    """Why `finding` loses nothing on this database, or None when it destroys what the database holds."""
    table = finding.table

    def made(by: _Made | None, what: str = "it") -> str | None:
        if by is None:
            return None
        return f"this revision creates {what} first" if by.revision == revision else \
            f"{by.revision} creates {what} earlier in this plan"

    # The object itself first, then its table (a table created in the plan covers all it holds).
    created = None
    if finding.kind in {"column", "column-change"} and table and finding.column:
        created = made(state.columns.get((fold_name(table), fold_name(finding.column))))
    elif finding.kind == "constraint" and finding.name:
        created = made(state.constraints.get((fold_name(table) if table else None, fold_name(finding.name))))
    elif finding.kind == "type" and finding.name:
        created = made(state.types.get(fold_name(finding.name)))
    elif finding.kind == "object" and finding.name:
        created = made(state.objects.get(fold_name(finding.name)))
    if created is None and table:
        created = made(state.made_table(table), "it" if finding.kind == "table" else table)
    if created:
        return created
    if table and (fold_name(table) in state.gone_tables or (
            finding.kind == "column" and finding.column
            and (fold_name(table), fold_name(finding.column)) in state.gone_columns)):
        return "an earlier step of this plan drops it already"
    if database is None:
        return None
    if database_empty():
        return "the database holds no table before this plan"
    origin = state.origin(table) if table else None
    if origin is not None and finding.kind in {"table", "column", "column-change", "rows", "constraint"}:
        if not database.has_table(origin):
            return "the database has no such table"
    if finding.kind in {"column", "column-change"} and origin and finding.column:
        if not database.has_column(origin, state.column_origin_of(table or origin, finding.column)):
            return "the database has no such column"
    if finding.kind == "type" and finding.name and not database.has_type(finding.name):
        return "the database has no such type"
    if finding.kind == "constraint" and origin and finding.name:
        return _recreated(finding, at, revision, origin, database, later)
    return None


def _recreated(finding: Finding, at: tuple[int, int], dropping: str, origin: str, database: Database,
               later: list[tuple[tuple[int, int], Created, str]]) -> str | None:
    """A constraint or index of the database dropped, then created again by the plan with the same kind on the
    same columns (a foreign key: to the same table): no row is lost, the guarantee stays."""
    existing = database.constraint(origin, finding.name or "")
    if existing is None:
        return None  # not found by that name: its columns are unknown, so it counts as lost
    family, columns, referent = existing
    for position, created, revision in later:
        if position <= at or created.table is None or fold_name(created.table) not in {fold_name(finding.table or ""),
                                                                                    fold_name(origin)}:
            continue
        same_kind = created.family == family or (family == "check" and created.family == "check")
        if not same_kind:
            continue
        if family == "check":
            if created.name and fold_name(created.name) == fold_name(finding.name or ""):
                return f"{'this revision' if revision == dropping else revision} creates it again"
            continue
        if tuple(fold_name(c) for c in created.columns) != columns:
            continue
        if family == "foreignkey" and referent and created.referent \
                and split_table(fold_name(created.referent))[1] != referent:
            continue
        who = "this revision" if revision == dropping else revision
        if created.name and fold_name(created.name) == fold_name(finding.name or ""):
            return f"{who} creates it again"
        return f"{who} re-creates it as {created.name or 'an unnamed one'} on the same columns"
    return None
