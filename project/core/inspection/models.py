"""Models against migrations: changes the models have that no migration covers (`makemigrations --check`, and
the warning of `migrate` and `runserver`).

The warning runs on every `migrate` at head and every `runserver`, so its answer is kept (.cache/, like the
scratch database): comparing means importing the models (SQLAlchemy's ORM with them) and an autogenerate
against the replayed history, hundreds of milliseconds on a large schema, while checking that nothing it
depends on changed costs a `stat` call per file. What it depends on: the models' name (TARGET_METADATA) and
the file it names, the history's files (env.py, the version files), the file of every module loaded while
comparing (the models, what they import, the tool, the installed packages), and the Python version.
`check` and `makemigrations --check` always compare afresh, as does a process that had the models imported
before the command began (their MetaData may differ in memory from the files); models that the command itself
imported from their files (`migrate`'s env.py does) are what the files say, and the kept answer stands.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from project.core.conf import cache_dir, migrations_dir, write_cache_file
from project.core.inspection.problem import Problem

DRIFT_CACHE: Path | None = None  # default: <BASE_DIR>/.cache/model-drift.json
_KEEP = 8  # answers kept (one per history and models state); the oldest go first


def model_problems(settings: Any = None) -> list[Problem]:
    """What `makemigrations --check` finds: replays the history into a scratch SQLite, diffs the models."""

    if settings is not None and not settings.get("TARGET_METADATA"):
        # A history brought without its models (or before any exist): nothing to compare, nothing wrong.
        return [Problem("models: not compared with the migrations: TARGET_METADATA is not set", level="warning")]

    return [Problem(f"models: the models need '{phrase}', which no migration covers: run "
                    "`manage.py makemigrations`") for phrase in unmigrated_changes(settings)]


def unmigrated_changes(settings: Any) -> list[str]:
    """Short phrases ('add column users.nickname') for what the models have and the history does not; [] without
    TARGET_METADATA. Cheap when the history has not changed: its replay comes from the scratch cache."""
    if settings is not None and not settings.get("TARGET_METADATA"):
        return []
    # Imported here: a warning answered from the cache needs neither autogenerate nor the scratch database.
    from project.core.authoring.autogen import autogenerate_ops, describe_ops
    from project.core.history.scratch import scratch_sqlite

    with scratch_sqlite(settings, "heads") as connection:  # every branch: the models describe them all
        return describe_ops(autogenerate_ops(connection, settings))


def drift_warning(settings: Any, *, loaded_from_files: bool = False) -> list[str]:
    """Django's "Your models have changes that are not yet reflected in a migration" for `migrate` (at head) and
    `runserver`: [] when the models match the history (or without TARGET_METADATA). A comparison that cannot run
    (models that do not import, a revision that fails on SQLite) is a one-line note, never a failure.
    `loaded_from_files`: the models' module, if imported, was imported by this command from its file (it was not
    loaded when the command began), so the kept answer holds for it."""
    from project.core.errors import describe

    try:
        changes = _cached_changes(settings, loaded_from_files)
    except Exception as exc:
        return [f"Note: the models could not be compared with the migrations: {describe(exc, settings)[0]}"]
    if not changes:
        return []
    shown = "; ".join(changes[:3]) + (f"; and {len(changes) - 3} more" if len(changes) > 3 else "")
    return [f"Your models have changes that are not yet reflected in a migration, and so won't be applied "
            f"({shown}).",
            "Run 'manage.py makemigrations' to make new migrations, and then re-run 'manage.py migrate' to apply them."]


def _cached_changes(settings: Any, loaded_from_files: bool = False) -> list[str]:
    """unmigrated_changes(settings), from the cache while nothing it depends on has changed."""
    if not settings.get("TARGET_METADATA"):
        return []
    if not loaded_from_files and _models_module(settings) in sys.modules:
        # Imported before this command began (call_command from a test or an application): its MetaData may have
        # been changed in memory, which no file shows, and importing it costs nothing more. Compare afresh.
        return unmigrated_changes(settings)
    path = DRIFT_CACHE or cache_dir(settings) / "model-drift.json"
    key = _inputs_key(settings)
    entries = _load(path)
    entry = entries.get(key)
    if entry is not None and all(_stamp(name) == stamp for name, stamp in entry["files"].items()):
        return list(entry["changes"])
    changes = unmigrated_changes(settings)
    entries.pop(key, None)
    entries[key] = {"changes": changes, "files": _loaded_sources(settings)}
    write_cache_file(path, dict(list(entries.items())[-_KEEP:]))
    return changes


def _inputs_key(settings: Any) -> str:
    """The models' name and the file it names here (another sys.path may find another module by the same name),
    the history's files (name, size and modification time: reading a thousand version files would cost more
    than the rest of the check; a copy of a history made with its times, as git checkouts and copytree make
    them, shares the answer) and the Python version."""
    import importlib.util

    name = str(settings.get("TARGET_METADATA"))
    try:
        spec = importlib.util.find_spec(_models_module(settings))
        origin = spec.origin if spec is not None else None
    except (ImportError, ValueError):
        origin = None  # the comparison itself will say what is wrong
    parts = [name, str(origin), sys.version]
    location = migrations_dir(settings)
    for folder in (location, location / "versions", location / "squashed"):
        try:
            with os.scandir(folder) as entries:
                files = sorted((entry.name, entry.stat()) for entry in entries if entry.name.endswith(".py"))
        except OSError:
            continue
        parts += [f"{folder.name}/{file}:{stat.st_size}:{stat.st_mtime_ns}" for file, stat in files]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def _models_module(settings: Any) -> str:
    """The module TARGET_METADATA names ("package.models:Base.metadata" -> "package.models")."""
    from project.core.conf import import_path_module

    return import_path_module(str(settings.get("TARGET_METADATA")))


def _loaded_sources(settings: Any) -> dict[str, list[int] | None]:
    """The file of every loaded module outside the standard library (the Python version stands for that): the
    models, what they import (installed packages included), the tool itself. Their stamps, to tell later
    whether any of them changed. Not the settings (their TARGET_METADATA and history are in the key, nothing
    else of them changes the comparison) nor the script that runs (manage.py)."""
    import sysconfig

    def folders(*names: str) -> tuple[str, ...]:
        return tuple({os.path.realpath(sysconfig.get_path(name)) + os.sep for name in names})

    # A virtualenv's platstdlib may hold its site-packages: those stay.
    stdlib, packages = folders("stdlib", "platstdlib"), folders("purelib", "platlib")
    settings_module = settings.module_name
    files = {}
    for module_name, module in list(sys.modules.items()):
        name = getattr(module, "__file__", None)
        if not name or module_name == "__main__" or module_name == settings_module:
            continue
        real = os.path.realpath(name)
        if not real.startswith(stdlib) or real.startswith(packages):
            files[name] = _stamp(name)
    return files


def _stamp(name: str) -> list[int] | None:
    try:
        stat = os.stat(name)
    except OSError:
        return None
    return [stat.st_mtime_ns, stat.st_size]


def _load(path: Path) -> dict[str, Any]:
    try:
        entries = json.loads(path.read_text())
        return entries if isinstance(entries, dict) else {}
    except (OSError, ValueError):
        return {}
