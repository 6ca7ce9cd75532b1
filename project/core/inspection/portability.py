"""The portability lint: version-file habits that work on one engine and fail on another (P101-P113).

Rules for what really fails on a supported engine version: SQLite >= 3.35, MariaDB >= 10.6, MySQL >= 8.0,
PostgreSQL >= 13. Each has an id; the id silences it (project.core.inspection.problem).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from project.core.inspection import concurrently, data_types
from project.core.inspection.identity import identity
from project.core.inspection.portable_sql import is_portable_sql
from project.core.inspection.problem import Problem, silenced_in_file, silences

if TYPE_CHECKING:
    from project.core.inspection.version_files import VersionFile

MAX_IDENTIFIER = 63  # PostgreSQL's limit (MySQL: 64)

# Functions or keywords in server_default text that only some engines know. Read with sqlglot's tokenizer.
NON_PORTABLE_DEFAULT_WORDS = {
    "NOW", "GEN_RANDOM_UUID", "UUID_GENERATE_V4", "GETDATE", "SYSDATE", "NEWID", "UUID", "NEXTVAL",
    "AUTOINCREMENT", "AUTO_INCREMENT", "SERIAL", "CURDATE", "DATETIME", "STRFTIME", "UNIX_TIMESTAMP",
    "LOCALTIMESTAMP", "CLOCK_TIMESTAMP", "STATEMENT_TIMESTAMP",
}
# Ops SQLite cannot run outside batch mode (it has no ALTER for them). Not drop_column: SQLite >= 3.35 has
# ALTER TABLE ... DROP COLUMN.
SQLITE_NEEDS_BATCH = {
    "alter_column", "drop_constraint", "create_foreign_key", "create_unique_constraint",
    "create_check_constraint", "create_primary_key",
}


RULES = {
    "P101": "raw SQL without a dialect guard",
    "P102": "an operation SQLite can only run in batch mode",
    "P103": "String without a length (MySQL)",
    "P104": "Enum without a name (PostgreSQL)",
    "P105": "a dialect-specific server default",
    "P106": "an identifier longer than PostgreSQL's 63 characters",
    "P107": "a downgrade that is missing or does nothing",
    "P108": "alter_column without existing_type (MySQL)",
    "P109": "dropping a constraint or index by a name the history never gave it",
    "P110": "a revision that reads the database, so it cannot render offline",
    "P111": "a data migration's sa.column() typed otherwise than the schema (psycopg 3, asyncpg)",
    "P112": "CONCURRENTLY outside an autocommit_block (project.core.inspection.concurrently)",
    "P113": "dropping an index that a foreign key still needs (MySQL/MariaDB)",
}


def portability_problems(files: list[VersionFile], silenced: set[str] | frozenset[str] = frozenset()) -> list[Problem]:
    problems = [problem for vf in files for problem in vf.lint]
    problems += _unnamed_drops(files)
    problems += _data_type_mismatches(files)
    problems += _foreign_key_index_drops(files)
    return [p for p in problems if p.rule not in silenced]


def _unnamed_drops(files: list[VersionFile]) -> list[Problem]:
    """P109: a constraint dropped by a name no revision created. An unnamed constraint gets a different name
    on every engine (users_email_key, email, none on SQLite), so dropping it by one of them fails elsewhere."""
    created = {name for vf in files for name, _ in vf.names.get("created", [])}
    problems = []
    for vf in files:
        for name, line in vf.names.get("dropped", []):
            if name not in created:
                problems.append(Problem(
                    f"drops '{name}', a name no revision gives: the history created it unnamed, so each engine "
                    "named it its own way and this fails on the others; name it where it is created",
                    vf.path, line, "P109"))
    return [p for p in problems if not silenced_in_file(p)]


def _data_type_mismatches(files: list[VersionFile]) -> list[Problem]:
    """P111: project.core.inspection.data_types reads the schema at each revision from the history's own ops."""
    problems = [Problem(message, path, line, "P111") for path, line, message in data_types.mismatches(files)]
    return [p for p in problems if not silenced_in_file(p)]



def lint(path: Path, tree: ast.Module, source: str = "") -> Iterator[Problem]:
    for problem in _lint_all(path, tree):
        if problem.rule not in silences(source, problem.line or 0):
            yield problem


def _lint_all(path: Path, tree: ast.Module) -> Iterator[Problem]:
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    downgrade, upgrade = functions.get("downgrade"), functions.get("upgrade")
    # A merge point, or a revision that does nothing either way (`makemigrations --empty` as a new
    # history's first revision), has nothing to undo.
    nothing_to_undo = _is_merge(tree) or (upgrade is not None and _is_empty(upgrade))
    if downgrade is None:
        yield Problem("no downgrade(): write one so the revision can be unapplied", path, 1, "P107")
    elif _is_empty(downgrade) and not nothing_to_undo:
        yield Problem("downgrade() does nothing: write it, or raise NotImplementedError to say it cannot be "
                      "undone", path, downgrade.lineno, "P107")
    types_described = _existing_type_nodes(tree)
    guarded_helpers = _helpers_called_only_under_guard(tree, functions)
    for node, guarded in _walk_with_guard(tree, False, guarded_helpers):
        if isinstance(node, ast.Call) and id(node) not in types_described:
            yield from _lint_call(path, node, guarded)
    yield from _reads_database(path, tree)
    yield from concurrently.lint(path, tree)


def _existing_type_nodes(tree: ast.Module) -> set[int]:
    """Calls inside `existing_type=...`: they describe a column as it is, they create nothing."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg in {"existing_type", "existing_server_default"}:
                    inside.update(id(n) for n in ast.walk(keyword.value))
    return inside


def _is_merge(tree: ast.Module) -> bool:
    return len(identity(tree).get("down_revisions", ())) > 1


def _is_empty(function: ast.FunctionDef) -> bool:
    body = [n for n in function.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    return all(isinstance(n, ast.Pass) for n in body)


def _walk_with_guard(node: ast.AST, guarded: bool, guarded_helpers: set[str] = frozenset()  # type: ignore[assignment]
                     ) -> Iterator[tuple[ast.AST, bool]]:
    """Every node, with whether it runs only under a dialect guard: inside `if <dialect test>:`, after an
    `if <dialect test>: ... return` in the same body (an early return), or in a helper function that is
    called only from guarded places."""
    yield node, guarded
    if isinstance(node, ast.If) and _mentions_dialect(node.test):
        for child in node.body + node.orelse:
            yield from _walk_with_guard(child, True, guarded_helpers)
        return
    if isinstance(node, ast.FunctionDef) and node.name in guarded_helpers:
        guarded = True
    for field_name, value in ast.iter_fields(node):
        children = value if isinstance(value, list) else [value]
        after_early_return = False
        for child in children:
            if not isinstance(child, ast.AST):
                continue
            yield from _walk_with_guard(child, guarded or after_early_return, guarded_helpers)
            if field_name in {"body", "orelse"} and _is_early_return(child):
                after_early_return = True


def _is_early_return(node: ast.AST) -> bool:
    """`if <dialect test>: ... return`: what follows runs on the other engines only."""
    return isinstance(node, ast.If) and _mentions_dialect(node.test) and bool(node.body) \
        and isinstance(node.body[-1], ast.Return)


def _helpers_called_only_under_guard(tree: ast.Module, functions: dict[str, ast.FunctionDef]) -> set[str]:
    helpers = {name for name in functions if name not in {"upgrade", "downgrade"}}
    calls: dict[str, list[bool]] = {name: [] for name in helpers}
    for node, guarded in _walk_with_guard(tree, False):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in calls:
            calls[node.func.id].append(guarded)
    return {name for name, seen in calls.items() if seen and all(seen)}


DIALECT_NAMES = {"sqlite", "postgresql", "postgres", "mysql", "mariadb", "mssql", "oracle"}


def _mentions_dialect(test: ast.expr) -> bool:
    """A test on the engine: `.dialect.name`, `.engine.name`, `context.get_context().dialect`, a variable
    named like `dialect`, or a comparison with an engine's name."""
    for node in ast.walk(test):
        if isinstance(node, ast.Attribute) and node.attr == "dialect":
            return True
        if isinstance(node, ast.Attribute) and node.attr == "name" and isinstance(node.value, ast.Attribute) \
                and node.value.attr in {"engine", "bind", "dialect"}:
            return True
        if isinstance(node, ast.Name) and "dialect" in node.id.lower():
            return True
        if isinstance(node, ast.Compare):
            for operand in [node.left, *node.comparators]:
                values = operand.elts if isinstance(operand, (ast.Tuple, ast.List, ast.Set)) else [operand]
                if any(isinstance(v, ast.Constant) and v.value in DIALECT_NAMES for v in values):
                    return True
    return False


def _call_name(call: ast.Call) -> tuple[str | None, str | None]:
    """(receiver, name) for `op.execute(...)` -> ("op", "execute"); `String()` -> (None, "String")."""
    func = call.func
    if isinstance(func, ast.Attribute):
        receiver = func.value.id if isinstance(func.value, ast.Name) else None
        return receiver, func.attr
    if isinstance(func, ast.Name):
        return None, func.id
    return None, None


def _kwarg(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _lint_call(path: Path, call: ast.Call, guarded: bool) -> Iterator[Problem]:
    receiver, name = _call_name(call)
    line = call.lineno
    if (receiver == "op" and name == "execute" and not guarded and call.args and _raw_sql(call.args[0])
            and not _portable_literal(call.args[0])):
        yield Problem("op.execute with raw SQL and no dialect guard: use SQLAlchemy constructs, or put it under "
                      "`if op.get_bind().dialect.name == ...`", path, line, "P101")
    if receiver == "op" and name in SQLITE_NEEDS_BATCH and not guarded:
        yield Problem(f"op.{name} outside batch_alter_table fails on SQLite: use "
                      f"`with op.batch_alter_table(...) as batch_op: batch_op.{name}(...)`", path, line, "P102")
    if name in {"String", "VARCHAR", "Unicode", "NVARCHAR"} and not call.args and _kwarg(call, "length") is None:
        yield Problem(f"{name}() without a length: MySQL rejects VARCHAR without one; give length=...", path, line,
                      "P103")
    if (name == "Enum" and _kwarg(call, "name") is None and not _is_false(_kwarg(call, "native_enum"))
            and not _names_enum_class(call)):
        yield Problem("Enum without name=: PostgreSQL needs a type name; give name=...", path, line, "P104")
    default = _kwarg(call, "server_default")
    if default is not None:
        text = _default_text(default)
        words = _non_portable_words(text) if text else []
        if words:
            yield Problem(f"server_default {text!r} is dialect-specific ({', '.join(words)}): use e.g. "
                          "sa.text(\"(CURRENT_TIMESTAMP)\") or a constant", path, line, "P105")
    if name == "alter_column" and _alters_definition(call) \
            and _kwarg(call, "existing_type") is None and _kwarg(call, "type_") is None:
        yield Problem("alter_column changes nullability or the name without existing_type=: MySQL/MariaDB "
                      "restate the whole column (CHANGE/MODIFY) and fail without it; give existing_type=...",
                      path, line, "P108")
    for value in [*call.args, *(k.value for k in call.keywords if k.arg in {"name", "new_column_name"})]:
        if isinstance(value, ast.Constant) and isinstance(value.value, str) and value.value.isidentifier() \
                and len(value.value) > MAX_IDENTIFIER:
            yield Problem(f"identifier {value.value[:20]}... is {len(value.value)} characters: PostgreSQL "
                          f"truncates names beyond {MAX_IDENTIFIER} (MySQL rejects beyond 64)", path, line, "P106")


def _names_enum_class(call: ast.Call) -> bool:
    """`Enum(TrialState)`: SQLAlchemy names the type after the Python enum class (trialstate), so PostgreSQL
    gets a name. Values are string literals or a starred sequence; a bare name or attribute is a class."""
    return len(call.args) == 1 and isinstance(call.args[0], ast.Name | ast.Attribute)


def _alters_definition(call: ast.Call) -> bool:
    return any(_kwarg(call, k) is not None for k in ("nullable", "new_column_name"))


def _reads_database(path: Path, tree: ast.Module) -> Iterator[Problem]:
    """P110 (a warning): results read from op.get_bind(). Offline the bind is a mock whose execute() returns
    nothing, so `migrate --sql` and `sqlmigrate` cannot render the revision; online `migrate` is fine."""
    binds = {"op.get_bind()", "context.get_bind()"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) \
                and ast.unparse(node.value) in binds:
            binds.update(ast.unparse(t) for t in node.targets)
    used_results: set[int] = set()
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Call) and not isinstance(node, ast.Expr):
                used_results.add(id(child))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        reads = (isinstance(func, ast.Attribute) and func.attr in {"execute", "exec_driver_sql", "scalar",
                                                                    "scalars"}
                 and ast.unparse(func.value) in binds and id(node) in used_results)
        # sa.inspect(bind), Inspector.from_engine(bind) (SQLAlchemy 1.x spelling), Table(..., autoload_with=bind)
        inspects = (_call_name(node)[1] in {"inspect", "from_engine"} and node.args
                    and ast.unparse(node.args[0]) in binds)
        autoload = _kwarg(node, "autoload_with")
        if reads or inspects or (autoload is not None and ast.unparse(autoload) in binds):
            yield Problem("reads the database through op.get_bind(): fine for `migrate`, but it cannot render "
                          "offline, so `migrate --sql` and `sqlmigrate` refuse it", path, node.lineno, "P110",
                          "warning")
            return


def constraint_names(tree: ast.Module) -> dict[str, Any]:
    """Names given to constraints and indexes (created) and names dropped, with lines, for P109."""
    created: list[Any] = []
    dropped: list[Any] = []
    creators = {"create_index", "create_unique_constraint", "create_foreign_key", "create_check_constraint",
                "create_primary_key", "create_exclude_constraint"}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        _, name = _call_name(node)
        first = node.args[0] if node.args else None
        if isinstance(first, ast.Call) and _call_name(first)[1] == "f" and first.args:
            first = first.args[0]  # op.f("name")
        named = _kwarg(node, "name") or _kwarg(node, "constraint_name") or _kwarg(node, "index_name")
        if isinstance(named, ast.Call) and _call_name(named)[1] == "f" and named.args:
            named = named.args[0]
        if name in creators or name in {"f"}:
            value = first if name != "f" else (node.args[0] if node.args else None)
            for candidate in (value, named):
                if isinstance(candidate, ast.Constant) and isinstance(candidate.value, str):
                    created.append([candidate.value, node.lineno])
        elif named is not None and isinstance(named, ast.Constant) and isinstance(named.value, str):
            created.append([named.value, node.lineno])  # sa.UniqueConstraint(..., name="x"), Index("x")...
        if name in {"Index"} and isinstance(first, ast.Constant) and isinstance(first.value, str):
            created.append([first.value, node.lineno])
        if name in {"drop_constraint", "drop_index"}:
            target = first if first is not None else named
            if isinstance(target, ast.Constant) and isinstance(target.value, str):
                dropped.append([target.value, node.lineno])
    return {"created": created, "dropped": dropped, "key_indexes": _key_index_ops(tree)}


def _is_false(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


def _raw_sql(node: ast.expr) -> bool:
    """A SQL string: a literal, an f-string, or sa.text("...")."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str) or isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp):  # "..." + "..."
        return _raw_sql(node.left) or _raw_sql(node.right)
    if isinstance(node, ast.Call) and _call_name(node)[1] == "text":
        return True
    return False


def _portable_literal(node: ast.expr) -> bool:
    """A literal SQL string (or sa.text of one) that reads alike on the three engines (inspection.portable_sql)."""
    if isinstance(node, ast.Call) and node.args:
        node = node.args[0]
    if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
        return False
    return is_portable_sql(node.value)


def _default_text(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Call) and _call_name(node)[1] == "text" and node.args:
        arg = node.args[0]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return arg.value
    return None


def _non_portable_words(text: str) -> list[str]:
    from sqlglot import Tokenizer, TokenType

    try:
        tokens = Tokenizer().tokenize(text)
    except Exception:
        return []
    words = []
    for token in tokens:
        if token.token_type == TokenType.DCOLON:
            words.append("::")
        elif token.token_type != TokenType.STRING and token.text.upper() in NON_PORTABLE_DEFAULT_WORDS:
            words.append(token.text)
    return words


# --- P113: an index dropped while a foreign key needs it ------------------------------------------------------
#
# MySQL/MariaDB need an index on a foreign key's columns (they start one) for as long as the key exists, and
# refuse to drop the last one: "Cannot drop index ...: needed in a foreign key constraint" (error 1553). A key
# added without such an index gets one of its own, which goes once another index covers the columns; so the
# key's columns must still start some other index, unique constraint or primary key after the drop. The indexes
# and keys come from the history's own operations (facts per file, replayed in revision order, as for P111);
# an operation under a dialect guard, or with names the reading cannot follow, is left out, never guessed.

def _key_index_ops(tree: ast.Module) -> dict[str, list[list[Any]]]:
    """The index and foreign key operations of upgrade() and downgrade(), in source order, with their lines."""
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    facts: dict[str, list[list[Any]]] = {}
    for direction in ("upgrade", "downgrade"):
        found: list[list[Any]] = []
        if direction in functions:
            _key_index_statements(functions[direction].body, {}, found)
        facts[direction] = found
    return facts


def _key_index_statements(body: list[ast.stmt], batches: dict[str, str], found: list[list[Any]]) -> None:
    for statement in body:
        if isinstance(statement, ast.With):
            inner = dict(batches)
            for item in statement.items:
                call = item.context_expr
                if isinstance(call, ast.Call) and _call_name(call)[1] == "batch_alter_table" and call.args \
                        and isinstance(item.optional_vars, ast.Name) and (table := _literal(call.args[0])):
                    inner[item.optional_vars.id] = table
            _key_index_statements(statement.body, inner, found)
        elif isinstance(statement, ast.If) and _mentions_dialect(statement.test):
            continue  # one engine's code: not read
        elif isinstance(statement, ast.If | ast.For | ast.Try):
            for block in ("body", "orelse", "finalbody"):
                _key_index_statements(getattr(statement, block, []), batches, found)
        elif isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
            found.extend(_key_index_op(statement.value, batches))


def _key_index_op(call: ast.Call, batches: dict[str, str]) -> Iterator[list[Any]]:
    receiver, name = _call_name(call)
    if receiver in batches:
        table: str | None = batches[receiver]
        args = list(call.args)
    elif receiver == "op":
        table, args = None, list(call.args)
    else:
        return
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    line = call.lineno

    def arg(position: int, *keys: str) -> ast.expr | None:
        # Positions count without the table argument that only op.* calls take (table: its own index).
        return args[position] if len(args) > position else next((keywords[k] for k in keys if k in keywords), None)

    if receiver == "op" and name in {"create_index", "drop_index", "create_unique_constraint", "drop_constraint"}:
        table = _literal(arg(1, "table_name"))
        if len(args) > 1:
            args.pop(1)
    if name == "create_table" and receiver == "op" and args and (created := _literal(args[0])):
        yield ["table", created, *_table_keys(args[1:])]
    elif name == "drop_table" and receiver == "op" and args and (dropped := _literal(args[0])):
        yield ["drop_table", dropped]
    elif name == "rename_table" and receiver == "op" and len(args) > 1 \
            and (old := _literal(args[0])) and (new := _literal(args[1])):
        yield ["rename_table", old, new]
    elif table is None:
        return
    elif name in {"create_index", "create_unique_constraint"} and (columns := _names(arg(1, "columns"))):
        yield ["index", table, _literal(arg(0, "index_name", "constraint_name")), columns]
    elif name in {"drop_index", "drop_constraint"} and (dropped := _literal(arg(0, "index_name", "constraint_name"))):
        yield ["drop", table, dropped, line]
    elif name == "create_foreign_key":
        local = arg(2, "local_cols") if receiver in batches else arg(3, "local_cols")
        if columns := _names(local):
            yield ["key", table if receiver in batches else _literal(arg(1, "source_table")),
                   _literal(arg(0, "constraint_name")), columns]
    elif name == "alter_column" and "new_column_name" in keywords:
        column = arg(0, "column_name") if receiver in batches else arg(1, "column_name")
        if (old := _literal(column)) and (new := _literal(keywords["new_column_name"])):
            yield ["rename_column", table if receiver in batches else _literal(arg(0, "table_name")), old, new]


def _table_keys(items: list[ast.expr]) -> list[Any]:
    """create_table's foreign keys and the column lists that start an index (primary key, unique)."""
    keys: list[list[Any]] = []
    covers: list[list[str]] = []
    named: list[list[Any]] = []  # unique constraints by name: a later revision may drop them
    primary: list[str] = []
    for item in items:
        if not isinstance(item, ast.Call):
            continue
        kind = _call_name(item)[1]
        column = _literal(item.args[0]) if item.args else None
        if kind == "Column" and column:
            for inner in item.args[1:]:
                if isinstance(inner, ast.Call) and _call_name(inner)[1] == "ForeignKey":
                    keys.append([None, [column]])
            if _is_true(_kwarg(item, "primary_key")):
                primary.append(column)
            if _is_true(_kwarg(item, "unique")) or _is_true(_kwarg(item, "index")):
                covers.append([column])
        elif kind == "ForeignKeyConstraint" and (columns := _names(item.args[0] if item.args else None)):
            keys.append([_literal(_kwarg(item, "name")), columns])
        elif kind in {"PrimaryKeyConstraint", "UniqueConstraint"}:
            columns = [c for a in item.args if (c := _literal(a))]
            unique = _literal(_kwarg(item, "name")) if kind == "UniqueConstraint" else None
            if columns and unique:
                named.append([unique, columns])
            elif columns:
                covers.append(columns)
    if primary:
        covers.append(primary)
    return [keys, covers, named]


def _literal(node: ast.expr | None) -> str | None:
    """A string literal, or op.f("...") of one."""
    if isinstance(node, ast.Call) and _call_name(node)[1] == "f" and node.args:
        node = node.args[0]
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _names(node: ast.expr | None) -> list[str] | None:
    if isinstance(node, ast.List | ast.Tuple):
        names = [_literal(e) for e in node.elts]
        return [n for n in names if n] if all(names) else None
    return None


def _is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _foreign_key_index_drops(files: list[VersionFile]) -> list[Problem]:
    """P113, across the history in revision order: each upgrade from its parents' schema, each downgrade from
    the schema its upgrade leaves."""
    by_rev = {vf.revision: vf for vf in files if vf.revision}
    after: dict[str, dict[str, Any]] = {}
    problems = []
    for vf in data_types._in_order(by_rev):
        facts: dict[str, Any] = dict(vf.names.get("key_indexes") or {"upgrade": [], "downgrade": []})
        state: dict[str, Any] = {}
        for parent in vf.down_revisions:
            state.update(_copy_state(after.get(parent, {})))
        problems += _replay_keys(state, facts["upgrade"], vf.path)
        after[vf.revision] = _copy_state(state)
        problems += _replay_keys(state, facts["downgrade"], vf.path)
    return [p for p in problems if not silenced_in_file(p)]


def _copy_state(state: dict[str, Any]) -> dict[str, Any]:
    return {table: {"keys": dict(t["keys"]), "indexes": dict(t["indexes"]), "covers": list(t["covers"])}
            for table, t in state.items()}


def _replay_keys(state: dict[str, Any], ops: list[list[Any]], path: Path) -> list[Problem]:
    problems = []
    for op in ops:
        kind = op[0]
        if kind == "table":
            keys = {name or f"#{n}": columns for n, (name, columns) in enumerate(op[2])}
            state[op[1]] = {"keys": keys, "indexes": dict(op[4]), "covers": op[3]}
        elif kind == "drop_table":
            state.pop(op[1], None)
        elif kind == "rename_table":
            if op[1] in state:
                state[op[2]] = state.pop(op[1])
        elif op[1] not in state:
            continue  # a table the reading does not know (made by raw SQL, or under a guard)
        elif kind == "index":
            state[op[1]]["indexes"][op[2] or f"#{len(state[op[1]]['indexes'])}"] = op[3]
        elif kind == "key":
            state[op[1]]["keys"][op[2] or f"#{len(state[op[1]]['keys'])}"] = op[3]
        elif kind == "rename_column":
            table = state[op[1]]
            for group in ("keys", "indexes"):
                table[group] = {k: [op[3] if c == op[2] else c for c in v] for k, v in table[group].items()}
            table["covers"] = [[op[3] if c == op[2] else c for c in v] for v in table["covers"]]
        elif kind == "drop":
            table, name, line = state[op[1]], op[2], op[3]
            if name in table["keys"]:
                del table["keys"][name]
                continue
            columns = table["indexes"].pop(name, None)
            if columns is None:
                continue
            others = [*table["indexes"].values(), *table["covers"]]
            for key in table["keys"].values():
                if columns[:len(key)] == key and not any(other[:len(key)] == key for other in others):
                    problems.append(Problem(
                        f"drops the index {name} while the foreign key on {op[1]}({', '.join(key)}) still needs "
                        "it: MySQL/MariaDB refuse (\"needed in a foreign key constraint\"); drop the foreign key "
                        "first (and create it again after, if it stays), or drop the table without dropping its "
                        "indexes", path, line, "P113"))
                    break
    return problems
