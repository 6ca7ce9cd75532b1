"""Writing a squash (`manage.py squashmigrations START END`): one revision standing in for a range, as Django's.

What a squash is and when the plan takes it: project.core.history.squash.

How the operations are found. The history is replayed once into a scratch SQLite database from START's parent to
END (project.core.history.scratch). Revisions that touch data or the live connection (`op.execute`, `bulk_insert`,
`get_bind()`, `.execute(...)`) are carried verbatim, in order, as nested functions of the squash; so are renames of
a table or column: autogenerate would write drop + add, losing the rows, moving the column last and clashing with
the constraint names a renamed table keeps. Between the carried revisions the
schema change of each run of plain revisions is found with Alembic's autogenerate API, comparing a snapshot of the
scratch database at the run's start with MetaData reflected at its end, and rendered in batch mode as
makemigrations renders it. What SQLite reflection loses is put back before rendering: the scratch replay records the
type and server default each operation gave a column (project.core.history.scratch), on both sides of the
comparison (the snapshot shares the scratch connection's records), and the types are rendered as makemigrations
renders them (column_types.ModelTypes: BIGINT keys with their SQLite variant, timezone=True kept, the project's
types in their portable form); server defaults come back as written (sa.false(), sa.func.now()), dropped tables'
and columns' too (autogen.restore_history_defaults). A column no operation recorded (raw SQL) is made generic
(`column_reflect` + `as_generic()`, so no `sqlite.` types leak into the file). Named enums come back from the
version files themselves (project.core.history.enums reads them), with the type create/drop operations
makemigrations adds (project.core.authoring.enum_types).
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from project.core.authoring import enum_types, ordering
from project.core.db import create_engine_for
from project.core.errors import MigrationError
from project.core.history.checksums import source_checksum
from project.core.history.enums import Reader
from project.core.history.scratch import (
    HISTORY_DEFAULT,
    HISTORY_TYPE,
    history_columns,
    scratch_sqlite,
    use_history_columns,
)
from project.core.history.scripts import alembic_config, resolve_revision, script_directory, upgrade_or_downgrade
from project.core.history.squash import DATA_CALLS, SQUASHED_DIR, ident, originals_digest, squashed_dir, squashes


@dataclass
class Range:
    revisions: list[Any]  # alembic Scripts, START..END

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(r.revision for r in self.revisions)

    @property
    def parent(self) -> str | None:
        down = self.revisions[0].down_revision
        return down if isinstance(down, str) or down is None else down[0]


def squash_range(script: Any, start: str, end: str) -> Range:
    """START..END as a straight line of the history, or MigrationError saying why it cannot be squashed."""
    first, last = resolve_revision(script, start), resolve_revision(script, end)
    if first is None or last is None or first in {"heads"} or last in {"heads"}:
        raise MigrationError("squashmigrations needs two revision ids, START and END (zero/base/heads are not ones).")
    chain = []
    rev = script.get_revision(last)
    while True:
        chain.append(rev)
        downs = rev.down_revision if isinstance(rev.down_revision, tuple) else (rev.down_revision,)
        if len(downs) > 1:
            raise MigrationError(f"Cannot squash across the merge {rev.revision}: squash a straight run of the "
                                 "history.")
        if rev.branch_labels or rev.dependencies:
            raise MigrationError(f"Cannot squash {rev.revision}: it has branch labels or depends_on; squash a range "
                                 "without them.")
        if rev.revision == first:
            break
        if downs[0] is None:
            raise MigrationError(f"{end} does not come after {start}: give START first, then END.")
        rev = script.get_revision(downs[0])
    chain.reverse()
    if len(chain) < 2:
        raise MigrationError("START and END are the same revision: a squash replaces at least two.")
    for rev, following in zip(chain, chain[1:], strict=False):
        if set(rev.nextrev) != {following.revision}:
            others = ", ".join(sorted(set(rev.nextrev) - {following.revision}))
            raise MigrationError(f"Cannot squash through {rev.revision}: {others} also branches from it.")
    taken = {r for s in squashes(script) for r in s.replaces}
    overlap = sorted(taken & {r.revision for r in chain})
    if overlap:
        raise MigrationError(f"{', '.join(overlap)} already belong to a squash in {SQUASHED_DIR}/: remove it first.")
    return Range(chain)


def data_revisions(rng: Range) -> list[Any]:
    """The revisions of the range whose upgrade or downgrade reads or writes data, or uses the connection."""
    return [rev for rev in rng.revisions if any(_call_name(c) in DATA_CALLS for c in _calls(Path(rev.path)))]


def carried_revisions(rng: Range, data: list[Any]) -> list[Any]:
    """The data revisions and the renames (of a table or a column), in range order.

    A rename is carried even where no row can be in its table: autogenerate's drop + add would put a renamed column
    last (the squash's table then differs from the originals'), make a renamed table with the constraint names the
    history gave the old one (PostgreSQL: relation "pk_members" already exists while the old table stands), and
    drop the old table while other tables' foreign keys still refer to it."""
    data_ids = {rev.revision for rev in data}
    return [rev for rev in rng.revisions if rev.revision in data_ids or _renames(Path(rev.path))]


def _calls(path: Path) -> list[ast.Call]:
    tree = ast.parse(path.read_text())
    return [call for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in {"upgrade", "downgrade"}
            for call in ast.walk(node) if isinstance(call, ast.Call)]


def _renames(path: Path) -> bool:
    """Whether the revision renames a table or a column."""
    return any(_call_name(c) == "rename_table" or any(k.arg == "new_column_name" for k in c.keywords)
               for c in _calls(path))


def _call_name(call: ast.Call) -> str | None:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


def write_squash(settings: Any, start: str, end: str, *, no_data: bool = False) -> Path:
    """Write migrations/squashed/<END>_squashed_<START>_<END>.py; return its path."""
    script = script_directory(alembic_config(settings))
    rng = squash_range(script, start, end)
    carried = data_revisions(rng)
    if carried and no_data:
        raise MigrationError(
            f"The range has data migrations ({', '.join(r.revision for r in carried)}): they can only be carried "
            "verbatim; run without --no-data to carry them, or squash a range without them.")
    segments = _segments(settings, script, rng, carried_revisions(rng, carried))
    text = _render(rng, segments)
    directory = squashed_dir(script)
    directory.mkdir(exist_ok=True)
    path = directory / f"{rng.ids[-1]}_squashed_{rng.ids[0]}_{rng.ids[-1]}.py"
    path.write_text(text)
    return path


@dataclass
class Segment:
    """Schema operations (upgrade, downgrade) found by autogenerate, or one revision carried verbatim."""

    upgrade_ops: Any = None
    downgrade_ops: Any = None
    carried: Any = None
    types: Any = None  # column_types.ModelTypes: renders each type as the originals did


def _segments(settings: Any, script: Any, rng: Range, carried: list[Any]) -> list[Segment]:
    """Replay the range once on a scratch SQLite database, diffing each run of plain revisions."""
    import sqlalchemy as sa
    from sqlalchemy import event

    def generic(_inspector: Any, _table: Any, column: dict[str, Any]) -> None:
        # No dialect-specific (sqlite.) types in the file: every engine must read it. A column whose type the
        # history recorded (scratch's own column_reflect listener) keeps that exact type: as_generic() would
        # drop its variants and flags (BIGINT's SQLite variant, timezone=True).
        if (column.get("info") or {}).get(HISTORY_TYPE):
            return
        try:
            column["type"] = column["type"].as_generic()
        except NotImplementedError:
            pass

    segments: list[Segment] = []
    carried_ids = {r.revision for r in carried}
    event.listen(sa.Table, "column_reflect", generic)
    try:
        with scratch_sqlite(settings, rng.parent) as connection:
            position = rng.parent
            for rev in rng.revisions:
                if rev.revision not in carried_ids:
                    continue
                if rev.down_revision != position:
                    segments.append(_diff(settings, script, connection, position, rev.down_revision))
                _upgrade(settings, script, connection, rev.revision)
                segments.append(Segment(carried=rev))
                position = rev.revision
            if position != rng.ids[-1]:
                segments.append(_diff(settings, script, connection, position, rng.ids[-1]))
    finally:
        event.remove(sa.Table, "column_reflect", generic)
    return segments


def _upgrade(settings: Any, script: Any, connection: Any, revision: str) -> None:
    upgrade_or_downgrade(alembic_config(settings, connection=connection), script, revision, True)
    if connection.in_transaction():
        connection.commit()


def _diff(settings: Any, script: Any, connection: Any, start: str | None, end: str) -> Segment:
    """The operations from `start` to `end`: a snapshot of the scratch database at `start` compared with the
    MetaData reflected after replaying to `end`."""
    import sqlalchemy as sa
    from alembic.autogenerate import produce_migrations
    from alembic.runtime.migration import MigrationContext

    from project.core.authoring.autogen import restate_defaults_of_retyped, restore_history_defaults
    from project.core.authoring.column_types import ModelTypes

    before = create_engine_for("sqlite://")
    try:
        with before.connect() as snapshot:
            connection.connection.dbapi_connection.backup(snapshot.connection.dbapi_connection)
            # The snapshot reads as the scratch database does: with the types and defaults the history gave.
            use_history_columns(snapshot, history_columns(connection))
            _upgrade(settings, script, connection, end)
            target = sa.MetaData()
            target.reflect(connection)
            if "alembic_version" in target.tables:
                target.remove(target.tables["alembic_version"])
            for reflected in target.tables.values():
                for col in reflected.columns:
                    # sa.false(), sa.func.now() as the history wrote them (SQLite reflects the text '0').
                    if HISTORY_DEFAULT in col.info and isinstance(col.server_default, sa.DefaultClause):
                        col.server_default = sa.DefaultClause(col.info[HISTORY_DEFAULT])
            enums_after, enums_before = _enums_at(script, end), _enums_at(script, start)
            for (table, column), enum in enums_after.items():
                if table in target.tables and column in target.tables[table].c:
                    target.tables[table].c[column].type = enum
            types = ModelTypes(target)
            context = MigrationContext.configure(snapshot, opts={
                "compare_type": types.compare_type, "render_as_batch": True, "render_item": types.render_item})
            upgrade_ops: Any = produce_migrations(context, target).upgrade_ops
            restore_history_defaults(upgrade_ops, snapshot)
            restate_defaults_of_retyped(upgrade_ops, target)
            enum_types.restore_enum_types(upgrade_ops, enums_before)
            # makemigrations' order, which every engine accepts: autogenerate drops tables in a set's order (a parent
            # before its child on some hash seeds, refused by PostgreSQL and MariaDB), and an index before its key.
            ordering.arrange(upgrade_ops)
            downgrade_ops = upgrade_ops.reverse()
            for container, tables_after in ((upgrade_ops, lambda: dict(target.tables)),
                                            (downgrade_ops, lambda: _reflected(snapshot))):
                ordering.drop_with_tables(container)
                ordering.foreign_keys_first(container, tables_after)
            names_before = {e.name for e in enums_before.values() if e.name}
            names_after = {e.name for e in enums_after.values() if e.name}
            enum_types.add_type_operations(upgrade_ops, names_after)
            enum_types.add_type_operations(downgrade_ops, names_before)
            # A table created (or re-created by the downgrade) with an enum type other columns keep using leaves
            # the type be, as makemigrations writes it: PostgreSQL refused to create it twice.
            enum_types.existing_types_not_created(upgrade_ops, lambda: names_before)
            enum_types.existing_types_not_created(downgrade_ops, lambda: names_after)
            return Segment(upgrade_ops, downgrade_ops, types=types)
    finally:
        before.dispose()


def _reflected(connection: Any) -> dict[str, Any]:
    """The tables of the database at START's parent (the snapshot): what the squash's downgrade goes back to."""
    import sqlalchemy as sa

    reflected = sa.MetaData()
    reflected.reflect(connection)
    return dict(reflected.tables)


def _enums_at(script: Any, revision: str | None) -> dict[tuple[str, str], Any]:
    """(table, column) -> named Enum as the version files leave them at `revision`, read as
    project.core.history.enums reads them."""
    columns: dict[tuple[str, str], Any] = {}
    if revision is None:
        return columns
    for rev in reversed(list(script.iterate_revisions(revision, "base"))):
        try:
            tree = ast.parse(Path(rev.path).read_text())
        except (OSError, SyntaxError, ValueError):
            continue
        reader = Reader(columns)
        reader.assignments(tree.body)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == "upgrade":
                reader.statements(node.body, batches={})
    return columns


# --- rendering --------------------------------------------------------------------------------------------------

HEADER = '''"""Squashed {first}..{last}: {count} revisions in one

{messages}

Revision ID: {last}
Revises: {parent}
Replaces: {first}..{last}
"""
import sqlalchemy as sa
from alembic import op

# END's own id: a database that ran this squash is where one that ran the originals is.
revision = {last!r}
down_revision = {parent!r}
branch_labels = None
depends_on = None
# The originals this squash stands in for (see docs/history.md, "Squashing a history").
replaces = {ids!r}
replaces_digest = {digest!r}  # the originals' code when squashed: `check` says when they change
# END's checksum: the applied log records it whichever path a database took (docs/history.md, "The applied log").
replaces_checksum = {end_checksum!r}
'''


def _render(rng: Range, segments: list[Segment]) -> str:
    messages = "\n".join(f"- {r.revision} {(r.doc or '').strip().splitlines()[0] if r.doc else ''}".rstrip()
                         for r in rng.revisions)
    parts = [HEADER.format(first=rng.ids[0], last=rng.ids[-1], parent=rng.parent, count=len(rng.ids),
                           messages=messages, ids=rng.ids,
                           digest=originals_digest([Path(r.path) for r in rng.revisions]),
                           end_checksum=source_checksum(Path(rng.revisions[-1].path).read_text()))]
    for segment in segments:
        if segment.carried is not None:
            parts.append(_carried_functions(segment.carried))
    imports: set[str] = set()
    upgrade = [_call_or_ops(s, forwards=True, imports=imports) for s in segments]
    downgrade = [_call_or_ops(s, forwards=False, imports=imports) for s in reversed(segments)]
    parts.append(_function("upgrade", upgrade))
    parts.append(_function("downgrade", downgrade))
    text = "\n".join(parts)
    # What the rendered types need beyond sa and op (a dialect's types in a variant), after the header's imports.
    extra = sorted(imports - {"import sqlalchemy as sa", "from alembic import op"})
    if extra:
        header_imports = "from alembic import op\n" + "".join(f"{i}\n" for i in extra)
        text = text.replace("from alembic import op\n", header_imports, 1)
    return text


def _function(name: str, bodies: list[str]) -> str:
    body = "\n".join(b for b in bodies if b.strip()) or "pass"
    return f"\ndef {name}() -> None:\n{textwrap.indent(body, '    ')}\n"


def _bare_function(arg: Any) -> str | None:
    """The name of a function without arguments (sa.func.now()), else None."""
    from sqlalchemy.sql.functions import FunctionElement

    if isinstance(arg, FunctionElement) and not list(arg.clauses) and getattr(arg, "name", "").isidentifier():
        return str(arg.name)
    return None


def _call_or_ops(segment: Segment, forwards: bool, imports: set[str]) -> str:
    import sqlalchemy as sa
    from alembic.autogenerate import render_python_code

    if segment.carried is not None:
        return f"_{'upgrade' if forwards else 'downgrade'}_{ident(segment.carried.revision)}()"
    ops = segment.upgrade_ops if forwards else segment.downgrade_ops
    if ops.is_empty():
        return ""
    contexts: list[Any] = []

    def render_item(kind: str, obj: Any, autogen_context: Any) -> Any:
        contexts.append(autogen_context)  # its `imports`: what the rendered types need (postgresql. ...)
        if kind == "server_default":
            function = _bare_function(obj.arg if isinstance(obj, sa.DefaultClause) else obj)
            if function is not None:
                # sa.func.now() as the history wrote it: Alembic would write its generic text, now(), which
                # SQLite stores as written and cannot run (the originals got CURRENT_TIMESTAMP there).
                return f"{autogen_context.opts.get('sqlalchemy_module_prefix') or 'sa.'}func.{function}()"
        return segment.types.render_item(kind, obj, autogen_context)

    code = render_python_code(ops, render_as_batch=True, render_item=render_item if segment.types else None)
    for context in contexts[:1]:
        imports.update(context.imports)
    kept = "\n".join(line for line in code.splitlines() if not line.strip().startswith("# ###"))
    return textwrap.dedent(kept).strip("\n")


def _carried_functions(rev: Any) -> str:
    """The revision's upgrade and downgrade as functions of the squash, each with the module-level code they may
    use (helpers, lightweight tables, enum objects) inside, so that two carried revisions never share names."""
    path = Path(rev.path)
    source = path.read_text()
    tree = ast.parse(source)
    prelude = []
    bodies: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in {"upgrade", "downgrade"}:
            bodies[node.name] = _body_source(source, node)
        elif _is_bookkeeping(node):
            continue
        else:
            prelude.append(textwrap.dedent(ast.get_source_segment(source, node, padded=True) or ""))
    out = []
    for name in ("upgrade", "downgrade"):
        body = "\n".join([*prelude, bodies.get(name, "pass")])
        out.append(f"\ndef _{name}_{ident(rev.revision)}() -> None:\n"
                   f"    # Carried verbatim from {path.name} ({name}).\n{textwrap.indent(body, '    ')}\n")
    return "\n".join(out)


def _is_bookkeeping(node: ast.stmt) -> bool:
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
        return True  # the module docstring
    if isinstance(node, ast.ImportFrom) and node.module == "__future__":
        return True
    target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else (
        node.target if isinstance(node, ast.AnnAssign) else None)
    return isinstance(target, ast.Name) and target.id in {"revision", "down_revision", "branch_labels", "depends_on"}


def _body_source(source: str, func: ast.FunctionDef) -> str:
    lines = source.splitlines()
    first = func.body[0]
    start = first.lineno - 1
    if first.__dict__.get("decorator_list"):
        start = min(d.lineno for d in first.decorator_list) - 1  # type: ignore[attr-defined]
    # Comments just above the first statement belong to the body too.
    while start > func.lineno and lines[start - 1].strip().startswith("#"):
        start -= 1
    return textwrap.dedent("\n".join(lines[start:func.end_lineno]))
