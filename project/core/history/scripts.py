"""The history on disk: Alembic's Config built from settings, the ScriptDirectory, and the revisions it names.

Everything here reads version files or alembic_version; nothing takes a lock or runs a plan (project.core.runner).
"""

from __future__ import annotations

import re
import sys
import types
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.util.exc import CommandError as AlembicCommandError
from sqlalchemy import Connection

from project.core.conf import Settings, base_dir, migrations_dir
from project.core.errors import DUPLICATE_REVISION_WARNING, MigrationError, UnknownRevision
from project.core.history import (
    revision_facts,
    sqlite_batch,  # noqa: F401 - registers SQLite's batch copy (its docstring)
)
from project.core.history.revision_facts import (  # noqa: F401 - REVISION_MAP_CACHE: the cache's name, for callers
    MODULE_FACTS,
    REVISION_MAP_CACHE,
    SOURCE_FILE,
    decoded,
    file_key,
    read_facts,
    resolved,
    write_facts,
)


def install_warning_filters() -> None:
    """The tool's two warning filters, installed when this module loads (every command that reads revisions loads
    it); a function so that a test running commands in its own process can install them again inside its own
    `warnings.catch_warnings()`, as a new process has them."""
    # Two version files with one revision id: Alembic warns and keeps one of them, so the other revision silently
    # drops out of showmigrations and migrate. An error instead, wherever the revision map is built;
    # errors.describe makes it one line ("`check` names both files").
    warnings.filterwarnings("error", message=DUPLICATE_REVISION_WARNING, category=UserWarning)
    # Autogenerate writes `autoincrement=True` into the alter_column of a primary key whose type changes: MySQL
    # needs it (its MODIFY would drop AUTO_INCREMENT), the other engines ignore it, and Alembic warns there in the
    # middle of migrate's output. Silenced for every run and rendering of revisions.
    warnings.filterwarnings("ignore", message="autoincrement and existing_autoincrement only make sense for MySQL",
                            category=UserWarning)


install_warning_filters()


def alembic_config(
    settings: Settings | None = None,
    *,
    connection: Connection | None = None,
    dialect_name: str | None = None,
    stdout: TextIO | None = None,
    output_buffer: TextIO | None = None,
    **configure_options: Any,
) -> Config:
    """Alembic's Config for these settings; env.py reads everything it needs from `attributes`."""
    cfg = Config(str(base_dir(settings) / "alembic.ini"), stdout=stdout or sys.stdout, output_buffer=output_buffer)
    cfg.set_main_option("script_location", str(migrations_dir(settings)))
    if settings is not None:
        cfg.attributes["settings"] = settings
    if connection is not None:
        cfg.attributes["connection"] = connection
    if dialect_name is not None:
        cfg.attributes["dialect_name"] = dialect_name
    cfg.attributes["configure_options"] = configure_options
    return cfg


def script_directory(cfg: Config | None = None) -> ScriptDirectory:
    return ScriptDirectory.from_config(cfg or alembic_config())


# --- the revision map from what earlier imports of the same files found -------------------------------------

# Building Alembic's revision map imports every version file, which is most of what a migrate with nothing to
# apply costs (the /health/ready of a start-up migration, a deploy's second migrate). What the map and the tool
# read of a module without running it is kept per file text (history.revision_facts): a file whose text an
# earlier import saw is not imported again until something else of it is used (its upgrade(), to run it).
# What a module that does not define a fact answers without being imported (Alembic's Script.longdoc asks).
_ABSENT = frozenset(MODULE_FACTS) | {"_alembic_source_encoding"}


class CachedModule(types.ModuleType):
    """A version file's module as an import of the same text left it: its MODULE_FACTS and docstring. Anything
    else (upgrade(), downgrade(), __file__, a helper) imports the file on first use, as Alembic would have."""

    def __init__(self, directory: Path, filename: str, facts: dict[str, Any]):
        super().__init__(re.sub(r"\W", "_", filename), facts.get("__doc__"))  # the name Alembic's import gives it
        self.__dict__.update({name: value for name, value in facts.items() if name in MODULE_FACTS})
        self.__dict__["_file"] = (directory, filename)

    def __getattr__(self, name: str) -> Any:  # only for what the facts lack
        if name in _ABSENT or name.startswith("__") and name.endswith("__") and name != "__file__":
            raise AttributeError(name)
        return getattr(self.imported(), name)

    def imported(self) -> types.ModuleType:
        """The module itself, imported now unless it was."""
        module = self.__dict__.get("_module")
        if module is None:
            from alembic.util import load_python_file

            module = self.__dict__["_module"] = load_python_file(*self.__dict__["_file"])
        return module


def import_modules(scripts: list[Script]) -> None:
    """Import the version files of `scripts` that a cached revision map has not imported yet, and give each
    Script its module itself (what runs sees the module as a full load gives it: vars() included): before a plan
    runs, so that a file which fails to import stops it before anything ran, as a full load would have."""
    for script in scripts:
        if isinstance(script.module, CachedModule):
            script.module = script.module.imported()


def cached_script_directory(cfg: Config, settings: Settings | None = None) -> ScriptDirectory:
    """A ScriptDirectory as script_directory(cfg), whose revision map is built from what earlier imports of the
    same file texts found (`.cache/revision-map.json`, by content hash): a file new or changed since is imported
    (and its facts kept), an unchanged one only once something beyond its facts is used. Same revisions, same
    graph, same warnings (duplicate ids): only the imports are deferred."""
    script = ScriptDirectory.from_config(cfg)
    if not script.sourceless:  # compiled-only histories are rare: imported as Alembic does
        from alembic.script.revision import RevisionMap

        script.revision_map = RevisionMap(lambda: _cached_revisions(script, revision_facts.cache_path(settings)))
    return script


def _cached_revisions(script: ScriptDirectory, cache: Path) -> Iterator[Script]:
    """ScriptDirectory._load_revisions (the same files, in the same order, with the same duplicate check), each
    file's Script made from its cached facts when its text is known, else from the import Alembic makes."""
    from alembic import util

    known = read_facts(cache)
    seen: dict[str, Any] = {}
    dupes = set()
    folders: dict[Path, Path] = {}
    for location in [vers for vers in script._version_locations if vers.exists()]:
        for file_path in Script._list_py_dir(script, location):
            real_path = resolved(file_path, folders)
            if real_path in dupes:
                util.warn(f"File {real_path} loaded twice! ignoring. Please ensure version_locations is unique.")
                continue
            dupes.add(real_path)
            if not SOURCE_FILE.match(real_path.name):
                continue  # what Script._from_path skips (__init__.py, editor files, non-Python files)
            try:
                data = real_path.read_bytes()
            except OSError:
                data = None  # gone or unreadable: Alembic's import says so
            key = file_key(real_path.name, data) if data is not None else ""
            facts = known.get(key)
            module = _cached_module(real_path, facts) if facts is not None else None
            if facts is not None and module is not None:
                yield Script(module, facts["id"], real_path)
                seen[key] = facts
                continue
            found = Script._from_path(script, real_path)
            if found is None:
                continue
            if data is not None:
                seen[key] = _facts_of(found, data)
            yield found
    if seen.keys() - known.keys():
        write_facts(cache, {**known, **seen} if len(known) < 4 * len(seen) + 100 else seen)


def _facts_of(script: Script, data: bytes) -> dict[str, Any] | None:
    """What the cache keeps of an imported version file; None (imported every time) unless each fact is written
    in the file as one literal on one line (`down_revision = "0007"`) which the import found: a value computed
    when the file is imported (from the environment, say) could differ next time for the same text."""
    module = script.module
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    facts: dict[str, Any] = {"id": script.revision}
    written: dict[str, list[str]] = {}
    for name, source in _ASSIGNMENT.findall(text):
        written.setdefault(name, []).append(source)
    for name in MODULE_FACTS:
        if name in module.__dict__:
            value = _encode(module.__dict__[name])
            if value is _NOT_PLAIN or not _written_as(written.get(name, []), module.__dict__[name]):
                return None
            facts[name] = value
    doc = module.__dict__.get("__doc__")
    if doc is not None and not isinstance(doc, str):
        return None
    facts["__doc__"] = doc
    return facts


# A top-level assignment to one of MODULE_FACTS, annotated or not: (name, what follows the `=` on its line).
_ASSIGNMENT = re.compile(rf"^({'|'.join(MODULE_FACTS)})\s*(?::[^=\n]*)?=(.*)$", re.M)


def _written_as(assignments: list[str], value: Any) -> bool:
    """The fact is assigned once at the top level, on one line, to a literal equal to `value`."""
    import ast

    if len(assignments) != 1:
        return False
    try:
        literal = ast.literal_eval(assignments[0].split("#")[0].strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return bool(literal == value and type(literal) is type(value))


_NOT_PLAIN: Any = object()
_SCALARS = (str, int, float, bool, type(None))


def _encode(value: Any) -> Any:
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, tuple | list) and all(isinstance(item, _SCALARS) for item in value):
        return {"tuple" if isinstance(value, tuple) else "list": list(value)}
    return _NOT_PLAIN


def _cached_module(path: Path, facts: dict[str, Any]) -> CachedModule | None:
    """The module as `facts` describe it; None for facts this code did not write (the file is then imported)."""
    found = decoded(facts)
    return CachedModule(path.parent, path.name, found) if found is not None else None


def single_head(script: ScriptDirectory) -> str:
    heads = script.get_heads()
    if len(heads) > 1:
        raise MigrationError(
            f"The history has {len(heads)} heads ({', '.join(sorted(heads))}): migrate them all with "
            "`manage.py migrate heads` (or one branch with `migrate <label>@head`), or join them with "
            "`manage.py makemigrations --merge`."
        )
    if not heads:
        raise MigrationError("The history has no revisions yet: run `manage.py makemigrations` to write the first.")
    return heads[0]


def history_head(script: ScriptDirectory) -> str | None:
    """The history's one head, or None while it has no revision yet (a new project before its first
    makemigrations). Several heads are an error, as for single_head."""
    return single_head(script) if script.get_heads() else None


def current_heads(connection: Connection) -> tuple[str, ...]:
    """The revisions recorded in alembic_version; () on an empty database. Leaves no transaction open."""
    try:
        return tuple(MigrationContext.configure(connection).get_current_heads())
    finally:
        if connection.in_transaction():
            connection.rollback()


def resolve_revision(script: ScriptDirectory, target: str) -> str | None:
    """An Alembic destination for `target`: head (the one head), heads (every head), <label or rev>@head (the
    head of that branch), zero/base (None), a revision id or a unique prefix of one."""
    if target in {"zero", "base"}:
        return None
    if target == "head":
        return history_head(script)  # an empty history's head is zero: nothing to apply, as in Django
    if target == "heads":
        heads = script.get_heads()
        return (heads[0] if heads else None) if len(heads) <= 1 else "heads"
    if target.endswith("@head"):
        try:
            found = script.get_revisions(target)
        except AlembicCommandError as exc:
            raise MigrationError(f"Unknown branch in '{target}': {exc}. `manage.py showmigrations` lists the "
                                 "revisions and their branch labels.") from None
        return found[0].revision if len(found) == 1 else target
    exact = lookup(script, target)
    if exact is not None and exact.revision == target:
        # A full id is a dict lookup: /health/ready resolves the head on every request.
        return target
    ids = [rev.revision for rev in script.walk_revisions()]
    matches = sorted(i for i in ids if i.startswith(target))
    if len(matches) == 1:
        return matches[0]
    if matches:
        shown = ", ".join(matches[:4]) + (", ..." if len(matches) > 4 else "")
        raise MigrationError(f"Ambiguous revision prefix '{target}': it matches {shown}. Give more characters.")
    raise MigrationError(f"Unknown revision '{target}'. `manage.py showmigrations` lists the revisions.")


def check_known(script: ScriptDirectory, heads: tuple[str, ...]) -> None:
    """UnknownRevision when the database records a revision that no version file defines.

    Every command that reads the current revision calls this (or make_plan, which does) before
    walking the history from it, so all of them say it in the same one line.
    """
    for head in heads:
        if lookup(script, head) is None:
            raise UnknownRevision(head)


def lookup(script: ScriptDirectory, rev: str) -> Script | None:
    try:
        return script.get_revision(rev)
    except AlembicCommandError:
        return None




def upgrade_or_downgrade(cfg: Config, script: ScriptDirectory, target: str, forwards: bool, *,
                         as_sql: bool = False, starting_rev: str | None = None) -> None:
    """alembic.command.upgrade/downgrade, on a ScriptDirectory whose revision map is already loaded (or a squashed
    view of the history); `as_sql` from `starting_rev` is their --sql mode (offline.py renders squashes with it)."""
    from alembic.runtime.environment import EnvironmentContext

    def revisions(rev: Any, _context: Any) -> Any:
        # The very calls alembic.command.upgrade/downgrade make: private, so pinned by
        # tests/test_errors_model.py::test_upgrade_revs_is_what_alembic_command_uses.
        return script._upgrade_revs(target, rev) if forwards else script._downgrade_revs(target, rev)

    with EnvironmentContext(cfg, script, fn=revisions, as_sql=as_sql, starting_rev=starting_rev,
                            destination_rev=target):
        script.run_env()
