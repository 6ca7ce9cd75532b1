"""`manage.py check`: problems found before they bite, one line each, with file:line where there is one.

- graph: several heads, a down_revision no file defines, a revision id used twice, a file that does not
  parse. Read from the version files with `ast`, so one broken file cannot hide the others.
- models: changes the models have that no migration covers (what `makemigrations --check` finds).
- portability: version-file habits that work on one engine and fail on another (shared/PITFALLS.md).
- database (--database): the live schema against the schema its recorded revision should have.
- deploy (--deploy): production settings sanity and passwords in committed files.
"""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from project.core.conf import cache_dir, project_dir, write_cache_file

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


@dataclass(frozen=True)
class Problem:
    message: str
    path: Path | None = None
    line: int | None = None
    # Lint rules have an id (silenced by `# check: ignore[ID]` on the line, `# check: ignore-file[ID]` in the
    # file, or the SILENCED_CHECKS setting) and a level: warnings are shown; only errors fail `check`.
    rule: str | None = None
    level: str = "error"

    def __str__(self) -> str:
        text = self.message + (f" [{self.rule}]" if self.rule else "")
        if self.level == "warning":
            text = f"warning: {text}"
        if self.path is None:
            return text
        where = _relative(self.path) + (f":{self.line}" if self.line else "")
        return f"{where}: {text}"


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(project_dir()))
    except ValueError:
        return str(path)


# --- version files -------------------------------------------------------------------------------


@dataclass
class VersionFile:
    path: Path
    parsed: bool
    revision: str | None = None
    revision_line: int | None = None
    down_revisions: tuple[str, ...] = ()
    down_line: int | None = None
    error: Problem | None = None
    lint: list[Problem] = field(default_factory=list)
    # Constraint and index names the file creates, and the ones it drops by name ([name, line] pairs).
    names: dict[str, list[Any]] = field(default_factory=dict)
    branch_labels: list[str] = field(default_factory=list)
    # Column ops and lightweight-table columns, for P111 (project.core.data_types).
    data_types: dict[str, Any] = field(default_factory=dict)


def versions_dir(settings: Any = None) -> Path:
    from project.core.conf import migrations_dir

    # Alembic's script_location is migrations_dir(settings) (migrator.alembic_config).
    return migrations_dir(settings) / "versions"


# What a file's analysis depends on: its text and these rules. Parsing and linting a long history is
# most of what `check` costs, so the results are kept per file text (.cache/, like project.core.scratch).
FACTS_CACHE: Path | None = None  # default: <BASE_DIR>/.cache/check-files.json


def _facts_path() -> Path:
    return FACTS_CACHE or cache_dir() / "check-files.json"


_NONTRANSACTIONAL = Path(__file__).with_name("nontransactional.py")  # P112 lives there: part of the rules' hash


def read_version_files(directory: Path) -> list[VersionFile]:
    """Every version file's identity (revision, down_revision) and portability problems."""
    from project.core import data_types

    rules = hashlib.sha256(Path(__file__).read_bytes() + Path(data_types.__file__).read_bytes()
                           + _NONTRANSACTIONAL.read_bytes()).digest()
    cached = _load_facts()
    seen: dict[str, dict[str, Any]] = {}
    files = []
    for path in sorted(p for p in directory.glob("*.py") if not p.name.startswith("_")):
        data = path.read_bytes()
        key = hashlib.sha256(rules + data).hexdigest()
        facts = cached.get(key) or _analyse(path, data.decode("utf-8"))
        seen[key] = facts
        files.append(_from_facts(path, facts))
    if seen.keys() - cached.keys():
        _store_facts({**cached, **seen} if len(cached) < 4 * len(seen) + 100 else seen)
    return files


def _analyse(path: Path, source: str) -> dict[str, Any]:
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        return {"parsed": False, "error": [f"syntax error: {exc.msg}", exc.lineno], "lint": []}
    facts: dict[str, Any] = {"parsed": True, "error": None, **_identity(tree)}
    facts["lint"] = [[p.message, p.line, p.rule, p.level] for p in _lint(path, tree, source)]
    facts["names"] = _constraint_names(tree)
    from project.core.data_types import file_facts

    facts["data_types"] = file_facts(tree)
    return facts


def _from_facts(path: Path, facts: dict[str, Any]) -> VersionFile:
    error = facts.get("error")
    return VersionFile(
        path, facts["parsed"], facts.get("revision"), facts.get("revision_line"),
        tuple(facts.get("down_revisions", ())), facts.get("down_line"),
        Problem(error[0], path, error[1]) if error else None,
        [Problem(message, path, line, *rest) for message, line, *rest in facts["lint"]],
        facts.get("names", {"created": [], "dropped": []}),
        facts.get("branch_labels", []),
        facts.get("data_types", {}),
    )


def _load_facts() -> dict[str, dict[str, Any]]:
    try:
        return json.loads(_facts_path().read_text())
    except (OSError, ValueError):
        return {}


def _store_facts(facts: dict[str, dict[str, Any]]) -> None:
    write_cache_file(_facts_path(), facts)


def _identity(tree: ast.Module) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for node in tree.body:
        target, value = _assignment(node)
        if target == "revision" and value is not None:
            found["revision"], found["revision_line"] = _literal(value), node.lineno
        elif target == "down_revision" and value is not None:
            down = _literal(value)
            found["down_revisions"] = list(down) if isinstance(down, (tuple, list)) else ([down] if down else [])
            found["down_line"] = node.lineno
        elif target == "branch_labels" and value is not None:
            labels = _literal(value)
            found["branch_labels"] = list(labels) if isinstance(labels, (tuple, list)) else ([labels] if labels else [])
    return found


def _assignment(node: ast.stmt) -> tuple[str | None, ast.expr | None]:
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id, node.value
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id, node.value
    return None, None


def _literal(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def graph_problems(files: list[VersionFile]) -> list[Problem]:
    problems = [vf.error for vf in files if vf.error]
    by_id: dict[str, list[VersionFile]] = {}
    for vf in files:
        if vf.parsed and not vf.revision:
            problems.append(Problem("no `revision = \"...\"` found: is this a revision file?", vf.path, 1))
        elif vf.revision:
            by_id.setdefault(vf.revision, []).append(vf)
    for rev, owners in by_id.items():
        if len(owners) > 1:
            others = ", ".join(_relative(o.path) for o in owners[1:])
            problems.append(Problem(f"revision id {rev} is used twice (also in {others}): give one file a new id",
                                    owners[0].path, owners[0].revision_line))
    parents = {p for vf in files for p in vf.down_revisions}
    for vf in files:
        for parent in vf.down_revisions:
            if parent not in by_id:
                problems.append(Problem(f"down_revision {parent!r} is not defined by any version file: "
                                        "restore it or point down_revision at an existing revision",
                                        vf.path, vf.down_line))
    heads = sorted(rev for rev in by_id if rev not in parents)
    # Branches with labels are there by design (expand/contract): `migrate heads` runs them all.
    by_design = any(vf.branch_labels for vf in files)
    if len(heads) > 1 and not by_design and not any(vf.error for vf in files):
        problems.append(Problem(f"the history has {len(heads)} heads ({', '.join(heads)}): "
                                "run `manage.py makemigrations --merge` to join them"))
    return problems


# --- portability lint ------------------------------------------------------------------------------
#
# Rules for what really fails on a supported engine version: SQLite >= 3.35, MariaDB >= 10.6, MySQL >= 8.0,
# PostgreSQL >= 13. Each has an id; the id silences it (see Problem).

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
    "P112": "CONCURRENTLY outside an autocommit_block (project.core.nontransactional)",
}


def portability_problems(files: list[VersionFile], silenced: set[str] | frozenset[str] = frozenset()) -> list[Problem]:
    problems = [problem for vf in files for problem in vf.lint]
    problems += _unnamed_drops(files)
    problems += _data_type_mismatches(files)
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
    return [p for p in problems if not _silenced_in_file(p)]


def _data_type_mismatches(files: list[VersionFile]) -> list[Problem]:
    """P111: project.core.data_types reads the schema at each revision from the history's own ops."""
    from project.core.data_types import mismatches

    problems = [Problem(message, path, line, "P111") for path, line, message in mismatches(files)]
    return [p for p in problems if not _silenced_in_file(p)]


def _silenced_in_file(problem: Problem) -> bool:
    try:
        source = problem.path.read_text(encoding="utf-8") if problem.path else ""
    except OSError:
        return False
    return problem.rule in _silences(source, problem.line or 0)


def _silences(source: str, line: int) -> set[str]:
    """Rule ids silenced for `line`: `# check: ignore[P101, P103]` on that line, `# check: ignore-file[...]`."""
    import re

    lines = source.splitlines()
    found: set[str] = set()
    for match in re.finditer(r"#\s*check:\s*ignore-file\[([^\]]*)\]", source):
        found.update(r.strip() for r in match.group(1).split(","))
    if 0 < line <= len(lines):
        on_line = re.search(r"#\s*check:\s*ignore\[([^\]]*)\]", lines[line - 1])
        if on_line:
            found.update(r.strip() for r in on_line.group(1).split(","))
    return found


def _lint(path: Path, tree: ast.Module, source: str = "") -> Iterator[Problem]:
    for problem in _lint_all(path, tree):
        if problem.rule not in _silences(source, problem.line or 0):
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
    from project.core import nontransactional

    yield from nontransactional.lint(path, tree)


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
    return len(_identity(tree).get("down_revisions", ())) > 1


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


def _constraint_names(tree: ast.Module) -> dict[str, list[Any]]:
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
    return {"created": created, "dropped": dropped}


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
    """A literal SQL string (or sa.text of one) that reads alike on the three engines (project.core.portable_sql)."""
    if isinstance(node, ast.Call) and node.args:
        node = node.args[0]
    if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
        return False
    from project.core.portable_sql import is_portable_sql

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
    from sqlglot.tokens import Tokenizer, TokenType

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


# --- models vs migrations -------------------------------------------------------------------------


def model_problems(settings: Any = None) -> list[Problem]:
    """What `makemigrations --check` finds: replays the history into a scratch SQLite, diffs the models."""

    from project.core.autogen import autogenerate_ops, describe_ops
    from project.core.scratch import scratch_sqlite

    if settings is not None and not settings.get("TARGET_METADATA"):
        # A history brought without its models (or before any exist): nothing to compare, nothing wrong.
        return [Problem("models: not compared with the migrations: TARGET_METADATA is not set", level="warning")]

    with scratch_sqlite(settings, "heads") as connection:  # every branch: the models describe them all
        ops = autogenerate_ops(connection, settings)
    return [Problem(f"models: the models need '{phrase}', which no migration covers: run "
                    "`manage.py makemigrations`") for phrase in describe_ops(ops)]


# --- live database --------------------------------------------------------------------------------


def database_problems(settings: Any) -> list[Problem]:
    """The live database against the schema its recorded revision should have."""
    from project.core import db

    return db.sync_entry(_database_problems)(settings)  # async drivers too


def _database_problems(settings: Any) -> list[Problem]:
    from project.core import migrator, schema_compare

    with migrator.connect(settings) as connection:
        heads = migrator.current_heads(connection)
        script = migrator.script_directory(migrator.alembic_config(settings))
        known = {rev.revision for rev in script.walk_revisions()}
        unknown = [h for h in heads if h not in known]
        if unknown:
            return [Problem(f"database: {migrator.UnknownRevision(unknown[0])}")]
        from project.core.applied_log import problems as log_problems

        logged = [Problem(f"database: {message}") for message in log_problems(settings, connection, script, heads)]
        target = heads[0] if len(heads) == 1 else ("heads" if heads else None)
        # defaults, enum values and CHECK constraints too: project.core.schema_compare
        diffs = schema_compare.database_differences(connection, settings, target)
    where = f"database at {', '.join(heads) or 'zero'}"
    return logged + [Problem(f"{where}: {diff}") for diff in diffs]


def _schema(inspector: Any) -> dict[str, dict[str, Any]]:
    """Names and shapes only, comparable across engines."""
    from project.core.inspectdb import bookkeeping_tables

    ignored = bookkeeping_tables()  # the tool's bookkeeping, not the app's schema
    schema = {}
    for table in inspector.get_table_names():
        if table in ignored:
            continue
        columns = {c["name"]: (bool(c["nullable"]), _family(c["type"]), _length(c["type"]))
                   for c in inspector.get_columns(table)}
        fks = inspector.get_foreign_keys(table)
        fk_names = {fk["name"] for fk in fks if fk.get("name")}
        named: dict[str, tuple[tuple[str, ...], bool]] = {}
        for uq in inspector.get_unique_constraints(table):
            if uq.get("name"):
                named[uq["name"]] = (tuple(uq["column_names"]), True)
        for ix in inspector.get_indexes(table):
            # MySQL backs each foreign key (and unique constraint) with an index of the same name.
            if ix.get("name") and ix["name"] not in fk_names and ix["name"] not in named:
                named[ix["name"]] = (tuple(ix["column_names"]), bool(ix.get("unique")))
        schema[table] = {
            "columns": columns,
            "pk": tuple(inspector.get_pk_constraint(table).get("constrained_columns") or ()),
            "fks": {(tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
                    for fk in fks},
            "indexes": named,
        }
    return schema


def _family(type_: Any) -> str:
    import sqlalchemy as sa

    # MySQL stores Boolean as TINYINT(1): count it with the integers.
    from sqlalchemy.sql.sqltypes import _Binary

    for family, kinds in (("integer", (sa.Integer, sa.Boolean)), ("string", (sa.String, sa.Enum)),
                          ("numeric", (sa.Numeric,)), ("datetime", (sa.DateTime,)), ("date", (sa.Date,)),
                          ("time", (sa.Time,)), ("binary", (_Binary,)), ("json", (sa.JSON,))):
        if isinstance(type_, kinds):
            return family
    return type(type_).__name__.lower()


def _length(type_: Any) -> int | None:
    import sqlalchemy as sa

    if isinstance(type_, sa.String) and not isinstance(type_, (sa.Text, sa.Enum)):
        return type_.length
    return None


def compare_schemas(expected: dict[str, Any], live: dict[str, Any]) -> list[str]:
    diffs = [f"table {t} is missing" for t in sorted(set(expected) - set(live))]
    diffs += [f"table {t} exists but no migration creates it" for t in sorted(set(live) - set(expected))]
    for table in sorted(set(expected) & set(live)):
        diffs += _compare_table(table, expected[table], live[table])
    return diffs


def _compare_table(table: str, want: dict[str, Any], have: dict[str, Any]) -> list[str]:
    diffs = [f"column {table}.{c} is missing" for c in want["columns"] if c not in have["columns"]]
    diffs += [f"column {table}.{c} exists but no migration creates it"
              for c in have["columns"] if c not in want["columns"]]
    for name in want["columns"].keys() & have["columns"].keys():
        (w_null, w_family, w_len), (h_null, h_family, h_len) = want["columns"][name], have["columns"][name]
        if w_null != h_null:
            diffs.append(f"column {table}.{name} is {'NULL' if h_null else 'NOT NULL'}, expected "
                         f"{'NULL' if w_null else 'NOT NULL'}")
        if w_family != h_family:
            diffs.append(f"column {table}.{name} is a {h_family} column, expected {w_family}")
        elif w_len and h_len and w_len != h_len:
            diffs.append(f"column {table}.{name} has length {h_len}, expected {w_len}")
    if want["pk"] != have["pk"]:
        diffs.append(f"primary key of {table} is ({', '.join(have['pk'])}), expected ({', '.join(want['pk'])})")
    for fk in sorted(want["fks"] - have["fks"]):
        diffs.append(f"foreign key {table}({', '.join(fk[0])}) -> {fk[1]} is missing")
    for fk in sorted(have["fks"] - want["fks"]):
        diffs.append(f"foreign key {table}({', '.join(fk[0])}) -> {fk[1]} exists but no migration creates it")
    for name in sorted(want["indexes"].keys() - have["indexes"].keys()):
        diffs.append(f"index or unique constraint {name} on {table} is missing")
    for name in sorted(have["indexes"].keys() - want["indexes"].keys()):
        diffs.append(f"index or unique constraint {name} on {table} exists but no migration creates it")
    for name in sorted(want["indexes"].keys() & have["indexes"].keys()):
        if want["indexes"][name] != have["indexes"][name]:
            diffs.append(f"index or unique constraint {name} on {table} differs: "
                         f"{_ix(have['indexes'][name])}, expected {_ix(want['indexes'][name])}")
    return diffs


def _ix(shape: tuple[tuple[str, ...], bool]) -> str:
    return f"{'unique ' if shape[1] else ''}({', '.join(shape[0])})"


# --- deploy ---------------------------------------------------------------------------------------

PLACEHOLDER_PASSWORDS = {"password", "***", "secret", "changeme", "xxx", "..."}
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
# Names reserved for documentation and tests (RFC 2606, RFC 6761): never a real server.
RESERVED_DOMAINS = (".invalid", ".example", ".test", ".localhost", "example.com", "example.org", "example.net")
# Test code holds made-up URLs on purpose; only the real production password is looked for there.
HEURISTIC_SKIP_DIRS = {"tests"}


def deploy_problems(settings_name: str = "prod") -> list[Problem]:
    from sqlalchemy.engine import make_url

    from project.core.conf import ImproperlyConfigured, load_settings

    try:
        settings = load_settings(settings_name)
    except ImproperlyConfigured as exc:
        return [Problem(f"deploy: {exc}")]
    problems = []
    url = make_url(settings.DATABASE_URL)
    if url.get_backend_name() == "sqlite":
        problems.append(Problem(f"deploy: {settings.module_name}.DATABASE_URL is SQLite: production needs a "
                                "server database (PROD_DATABASE_URL=postgresql+psycopg2://...)"))
    if settings.get("DEBUG"):
        problems.append(Problem(f"deploy: DEBUG is on in {settings.module_name}: turn it off in production"))
    if not settings.get("CONFIRM_DESTRUCTIVE"):
        problems.append(Problem(f"deploy: CONFIRM_DESTRUCTIVE is off in {settings.module_name}: a migrate could "
                                "drop data without asking (set CONFIRM_DESTRUCTIVE=1)"))
    problems += committed_secret_problems(url.password)
    return problems


def tracked_files(root: Path | None = None) -> list[Path]:
    root = root or project_dir()
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    return [root / name for name in out.split("\0") if name]


def committed_secret_problems(password: str | None = None, root: Path | None = None) -> list[Problem]:
    """Tracked files that hold a database password: the production one, or any URL with an inline password.

    Placeholders (PASSWORD, ***...), loopback hosts (a throwaway local server's default), reserved example
    domains (db.invalid, db.example.com) and made-up URLs under tests/ do not count.
    The password itself is never printed.
    """
    root = root or project_dir()
    problems = []
    for path in tracked_files(root):
        if path.name == ".env":
            problems.append(Problem("deploy: .env is committed: remove it from git (keep .env.example)", path))
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if password and len(password) >= 4 and password in line:
                problems.append(Problem("deploy: the production database password is in a committed file",
                                        path, number))
            elif path.relative_to(root).parts[0] not in HEURISTIC_SKIP_DIRS and _inline_password(line):
                problems.append(Problem("deploy: a database URL with an inline password is committed: "
                                        "read it from the environment instead", path, number))
    return problems


def _inline_password(line: str) -> bool:
    from sqlalchemy.engine import make_url

    for word in line.replace('"', " ").replace("'", " ").replace("=", " ").split():
        if "://" not in word or "@" not in word:
            continue
        try:
            url = make_url(word.strip("(),;"))
        except Exception:
            continue
        password = url.password
        host = (url.host or "").lower()
        if not password or host in LOOPBACK_HOSTS or host.endswith(RESERVED_DOMAINS):
            continue
        if password.lower() in PLACEHOLDER_PASSWORDS or password.startswith(("$", "<", "{")):
            continue
        return True
    return False
