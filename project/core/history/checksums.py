"""Checksums of version files: what a revision does, not how its file is written.

The checksum of a version file is the SHA-256 (hex) of `ast.dump()` of its module, after
- every docstring (module, class, function: a string literal as the first statement of a body) is removed,
- the module's top-level `import`/`from ... import` statements are moved to the front and sorted (and the
  names inside each `from ... import` sorted),
and without line and column numbers. So comments, blank lines, formatting, quoting style, docstrings and
import order do not count; any other change to the module does: an operation, an argument, a constant or a
helper the functions use, `revision`/`down_revision`.

Parsing every applied file on every migrate would cost time proportional to the history, so each file's
checksum is cached (`.cache/checksums.json`) under its path, modification time and size: a migrate at head
re-hashes only files that changed on disk. A cache that cannot be read or written is ignored.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from project.core.conf import cache_dir, write_cache_file

CHECKSUM_PATTERN = re.compile(r"^[0-9a-f]{64}$")
CACHE_NAME = "checksums.json"

_memory: dict[str, tuple[int, int, str]] = {}  # path -> (mtime_ns, size, checksum), for this process


def source_checksum(source: str) -> str:
    """The checksum of a version file's text (see the module docstring for what is hashed)."""
    tree = ast.parse(source)
    _strip_docstrings(tree)
    imports = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    for node in imports:
        node.names.sort(key=lambda alias: (alias.name, alias.asname or ""))
    others = [node for node in tree.body if not isinstance(node, ast.Import | ast.ImportFrom)]
    tree.body = sorted(imports, key=ast.dump) + others
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()


def _strip_docstrings(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            # A body must keep one statement: a function that was only a docstring becomes `pass`.
            node.body = body[1:] or [ast.Pass()]


def is_checksum(value: Any) -> bool:
    """A value the log can hold as a checksum (anything else was written by hand)."""
    return isinstance(value, str) and bool(CHECKSUM_PATTERN.match(value))


def file_checksums(paths: list[str], settings: Any = None) -> dict[str, str]:
    """The checksum of each version file in `paths` (keyed as given); the cache is written once, and only when
    a file had to be hashed."""
    if not _memory:
        _memory.update(_read_cache(settings))
    found: dict[str, str] = {}
    hashed = False
    for path in paths:
        found[path], computed = _checksum(path)
        hashed = hashed or computed
    if hashed:
        _write_cache(settings)
    return found


def file_checksum(path: str, settings: Any = None) -> str:
    """The checksum of one version file, from the cache while the file is unchanged."""
    return file_checksums([path], settings)[path]


def _checksum(given: str) -> tuple[str, bool]:
    """The file's checksum, and whether it had to be computed (the cache did not have it)."""
    path = os.path.abspath(given)  # Alembic's paths are absolute already; no symlink resolution needed
    stat = os.stat(path)
    key = (stat.st_mtime_ns, stat.st_size)
    cached = _memory.get(path)
    if cached is not None and (cached[0], cached[1]) == key:
        return cached[2], False
    with open(path, encoding="utf-8") as source:
        checksum = source_checksum(source.read())
    _memory[path] = (key[0], key[1], checksum)
    return checksum, True


def _cache_path(settings: Any) -> Path:
    return cache_dir(settings) / CACHE_NAME


def _read_cache(settings: Any) -> dict[str, tuple[int, int, str]]:
    try:
        data = json.loads(_cache_path(settings).read_text(encoding="utf-8"))
        return {str(k): (int(v[0]), int(v[1]), str(v[2])) for k, v in data.items() if is_checksum(v[2])}
    except (OSError, ValueError, TypeError, IndexError, AttributeError):
        return {}


def _write_cache(settings: Any) -> None:
    for gone in [path for path in _memory if not os.path.exists(path)]:
        del _memory[gone]  # removed files (and tests' temporary ones) do not pile up
    write_cache_file(_cache_path(settings), {k: list(v) for k, v in _memory.items()})
