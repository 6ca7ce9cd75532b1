"""What earlier imports of the version files found (`.cache/revision-map.json`), read without importing Alembic.

history.scripts builds Alembic's revision map from these facts (cached_script_directory); runner.at_head answers
a migrate with nothing to apply from them alone, without Alembic's package (about a fifth of such a migrate is
importing it). Each file's facts are kept under its name and content hash: a file new or changed since is not
known here, and whoever asks then falls back to Alembic's own load.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from project.core.conf import base_dir, cache_dir, migrations_dir, write_cache_file

REVISION_MAP_CACHE = "revision-map.json"
# Alembic's Script reads revision, down_revision, branch_labels, depends_on (and __doc__); the tool reads phase
# (history.phases), replaces and replaces_checksum (a squash: history.squash, history.applied_log).
MODULE_FACTS = ("revision", "down_revision", "branch_labels", "depends_on", "phase", "replaces", "replaces_checksum")
# The version files Alembic loads: alembic.script.base._only_source_rev_file (its listing skips __init__.py and
# editors' lock files; pinned by tests/test_revision_map_cache.py).
SOURCE_FILE = re.compile(r"(?!\.\#|__init__)(.*\.py)$")
# alembic.ini keys that move or widen where Alembic looks for version files: with any of them set, only
# Alembic's own listing is trusted (history.scripts still caches the facts of what it lists).
_LAYOUT_KEYS = re.compile(r"^\s*(version_locations|recursive_version_locations|sourceless)\s*[=:]", re.M)


def cache_path(settings: Any) -> Path:
    return cache_dir(settings) / REVISION_MAP_CACHE


def file_key(name: str, data: bytes) -> str:
    """The cache key of a version file: its name and its text."""
    return hashlib.sha256(name.encode() + b"\0" + data).hexdigest()


def resolved(path: Path, folders: dict[Path, Path]) -> Path:
    """path.resolve(), as Alembic's listing resolves each file, with one system call for a file that is not a
    link (its folder is resolved once for all its files)."""
    if path.is_symlink():
        return path.resolve()
    if path.parent not in folders:
        folders[path.parent] = path.parent.resolve()
    return folders[path.parent] / path.name


# The last cache file read, by its identity: a migrate that looked for its answer at head (runner.at_head) and
# then builds the map reads it once. write_cache_file replaces the file (a new inode), so a changed file is read.
_last_read: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {}


def read_facts(cache: Path) -> dict[str, Any]:
    """The cache's entries by file key (not to be changed: the last one read is kept)."""
    try:
        stat = os.stat(cache)
        identity = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        last = _last_read.get(str(cache))
        if last is not None and last[0] == identity:
            return last[1]
        data = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    # Entries of another shape (a cache written by hand, or by another version of this code) are ignored.
    facts = {key: facts for key, facts in data.items()
             if facts is None or (isinstance(facts, dict) and isinstance(facts.get("id"), str))} \
        if isinstance(data, dict) else {}
    _last_read.clear()
    _last_read[str(cache)] = (identity, facts)
    return facts


def write_facts(cache: Path, facts: dict[str, Any]) -> None:
    write_cache_file(cache, facts)


def decoded(facts: dict[str, Any]) -> dict[str, Any] | None:
    """The facts as the module had them (tuples and lists back); None for facts this code did not write."""
    try:
        return {name: (tuple(value["tuple"]) if "tuple" in value else list(value["list"]))
                if isinstance(value, dict) else value for name, value in facts.items()}
    except (KeyError, TypeError):
        return None


@dataclass(frozen=True)
class KnownHistory:
    """The history as its cached facts describe it, every file known."""

    revisions: dict[str, dict[str, Any]]  # revision id -> its decoded facts
    paths: dict[str, Path]  # revision id -> its file (resolved, as Alembic's Script.path)
    heads: tuple[str, ...]  # the revisions no other one names as its down_revision (Alembic's get_heads())


def known_history(settings: Any) -> KnownHistory | None:
    """The history from the cached facts alone, or None when they may not say what Alembic's load would: a file
    new or changed since its facts were kept (or one imported every time), version files Alembic would look for
    elsewhere (alembic.ini's version_locations, recursive_version_locations, sourceless), two files with one
    revision id, a down_revision or depends_on that names no revision exactly (a branch label, a prefix or a
    missing one: Alembic resolves or refuses those). Reads and hashes each version file, as the cached map does."""
    try:
        ini = (base_dir(settings) / "alembic.ini").read_text(encoding="utf-8")
    except FileNotFoundError:
        ini = ""  # Alembic's Config reads a missing file as an empty one
    except (OSError, UnicodeDecodeError):
        return None
    if _LAYOUT_KEYS.search(ini):
        return None
    versions = Path(migrations_dir(settings), "versions").absolute()
    # os.scandir and plain strings: this runs before every migrate that may be at head, and pathlib's objects
    # cost more than the reading and hashing of the files (a file that is a link is resolved as Alembic does).
    try:
        with os.scandir(versions) as found:
            entries = sorted((entry.name, entry.is_symlink()) for entry in found if not entry.is_dir())
    except OSError:
        return None
    known = read_facts(cache_path(settings))
    folder = os.path.realpath(versions)
    revisions: dict[str, dict[str, Any]] = {}
    paths: dict[str, Path] = {}
    for name, link in entries:
        path = os.path.realpath(os.path.join(versions, name)) if link else os.path.join(folder, name)
        if not SOURCE_FILE.match(os.path.basename(path)):
            continue
        try:
            with open(path, "rb") as file:
                data = file.read()
        except OSError:
            return None
        stored = known.get(file_key(os.path.basename(path), data))
        facts = decoded(stored) if stored is not None else None
        if facts is None or facts["id"] in revisions:
            return None
        revisions[facts["id"]] = facts
        paths[facts["id"]] = Path(path)
    named: set[str] = set()
    for facts in revisions.values():
        downs = _ids(facts.get("down_revision"))
        if downs is None or not set(downs) <= revisions.keys():
            return None
        depends = _ids(facts.get("depends_on"))
        if depends is None or not set(depends) <= revisions.keys():
            return None
        named.update(downs)
    return KnownHistory(revisions, paths, tuple(rev for rev in revisions if rev not in named))


def _ids(value: Any) -> tuple[str, ...] | None:
    """A down_revision or depends_on as revision ids (None: not one of the shapes Alembic takes)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, tuple | list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    return None
