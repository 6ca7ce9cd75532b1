"""Squashed histories: one revision standing in for a range START..END, as Django's `squashmigrations`.

The mechanism. A squash is a version file in `migrations/squashed/` whose `revision` is END's own id, whose
`down_revision` is START's parent, and whose `replaces` names the range. It is not in `versions/`, so plain
Alembic (and every command reading the ordinary history) never sees it: `alembic upgrade head` keeps running the
originals, with one head, and stays correct. The tool's plan (history.plan.make_plan -> `plan_script`) swaps the
range for the squash when the database has applied none of the range and the target lies at or past END
(a fresh database), or when a database at or past END is taken back before START. Because the squash carries
END's id, a database that took it records END, exactly as one that ran the originals: later revisions follow
either way, and a database stopped inside the range simply continues through the originals. Once every database
has passed END, delete the originals and move the squash file into `versions/`.
Writing one is project.core.authoring.squash_writer's.
"""

from __future__ import annotations

import ast
import re
import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from project.core.errors import MigrationError
from project.core.history.scripts import check_known, lookup, resolve_revision

SQUASHED_DIR = "squashed"
# Calls that make a revision read or write data, or use the live connection: such a revision is carried verbatim.
# So is a revision that renames a table or column (see _renames).
DATA_CALLS = {"execute", "bulk_insert", "get_bind", "exec_driver_sql", "executemany"}


@dataclass(frozen=True)
class Squash:
    path: Path
    revision: str  # END's id
    down_revision: str | None  # START's parent
    replaces: tuple[str, ...]  # START..END in apply order
    digest: str | None = None  # of the originals' code when the squash was written (see originals_digest)


def squashed_dir(script: Any) -> Path:
    return Path(script.dir) / SQUASHED_DIR


def squashes(script: Any) -> list[Squash]:
    """The squash files of this history (read, not imported)."""
    return _read_squashes(squashed_dir(script))


def _read_squashes(directory: Path) -> list[Squash]:
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.glob("*.py")):
        values = _module_constants(path)
        replaces = values.get("replaces")
        if isinstance(values.get("revision"), str) and isinstance(replaces, tuple) and replaces:
            found.append(Squash(path, values["revision"], values.get("down_revision"), replaces,
                                values.get("replaces_digest")))
    return found


def _module_constants(path: Path) -> dict[str, Any]:
    """The module-level constants assigned before its first function (a squash can run to thousands of lines, and
    every migrate reads it: parsing the header alone keeps that cheap)."""
    try:
        text = path.read_text()
    except OSError:
        return {}
    header = re.split(r"^(?:def|async def|class) ", text, maxsplit=1, flags=re.M)[0]
    try:
        tree = ast.parse(header)
    except (SyntaxError, ValueError):
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            return {}
    values: dict[str, Any] = {}
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else (
            node.target if isinstance(node, ast.AnnAssign) else None)
        value = getattr(node, "value", None)
        if isinstance(target, ast.Name) and value is not None:
            try:
                values[target.id] = ast.literal_eval(value)
            except ValueError:
                pass
    return values


# --- the plan: which databases take the squash -----------------------------------------------------------------

def plan_script(script: Any, heads: tuple[str, ...], target: str) -> Any | None:
    """A ScriptDirectory in which the squashes this move crosses whole replace their ranges; None when none does.

    Decided on the squashed view alone, so that a fresh migrate never imports the originals it skips: in the view a
    database inside a range has an unknown head, and a target inside a range is unknown; anything else either
    crosses a squash (END applied on one side of the move and not on the other) or leaves it alone."""
    # Read once per ScriptDirectory, which is a snapshot already (readiness plans with one on every request).
    cache = script.__dict__.setdefault("_squash_cache", {})
    if "squashes" not in cache:
        cache["squashes"] = squashes(script)
    if not cache["squashes"]:
        return None
    files = _revision_files(Path(script.versions))
    usable = [s for s in cache["squashes"] if all(r in files for r in s.replaces)
              and not set(heads) & set(s.replaces[:-1])]
    while usable:
        key = tuple(s.path for s in usable)
        if key not in cache:
            cache[key] = _view(files, usable)
        view = cache[key]
        crossing = [s for s in usable if _crosses(view, s, heads, target)]
        if crossing == usable:
            return view
        usable = crossing
    return None


def _revision_files(versions: Path) -> dict[str, Path]:
    """revision id -> version file, read with a pattern (importing the files is what the view saves)."""
    found = {}
    for path in versions.glob("*.py"):
        match = _REVISION.search(path.read_text())
        if match:
            found[match.group(1)] = path
    return found


_REVISION = re.compile(r"""^revision\s*(?::[^=\n]*)?=\s*['"]([^'"]+)['"]""", re.M)


def _crosses(view: Any, squash: Squash, heads: tuple[str, ...], target: str) -> bool:
    try:
        check_known(view, heads)
        destination = resolve_revision(view, target)
    except MigrationError:
        return False  # a target inside the range: the originals
    applied = {r.revision for r in view.iterate_revisions(heads, "base")} if heads else set()
    reach = {r.revision for r in view.iterate_revisions(destination, "base")} if destination else set()
    return (squash.revision in applied) != (squash.revision in reach)


def carried_revision(exc: BaseException, script: Any) -> str | None:
    """The original revision `exc` was raised in, when `script` (an Alembic Script) is a squash and the error came
    from a revision it carries verbatim (its `_upgrade_<id>()`): messages can then name the code the user wrote."""
    import os

    replaces = getattr(script.module, "replaces", None)
    if not isinstance(replaces, tuple):
        return None
    names = {f"_{way}_{ident(rev)}": rev for rev in replaces for way in ("upgrade", "downgrade")}
    path = os.path.realpath(script.path)
    frame = exc.__traceback__
    while frame is not None:
        code = frame.tb_frame.f_code
        if code.co_name in names and os.path.realpath(code.co_filename) == path:
            return str(names[code.co_name])
        frame = frame.tb_next
    return None


def _originals_present(script: Any, squash: Squash) -> bool:
    return all(_defined(script, rev) for rev in squash.replaces)


def _defined(script: Any, rev: str) -> bool:
    return lookup(script, rev) is not None


def _view(files: dict[str, Path], usable: list[Squash]) -> Any:
    """The history with each range replaced by its squash: a directory of links to the version files, read by
    Alembic's public ScriptDirectory (removed when the ScriptDirectory is collected)."""
    from alembic.script import ScriptDirectory

    replaced = {rev for squash in usable for rev in squash.replaces}
    links = Path(tempfile.mkdtemp(prefix="squash-view-"))
    for rev, path in files.items():
        if rev not in replaced:
            (links / path.name).symlink_to(path.resolve())
    for squash in usable:
        (links / squash.path.name).symlink_to(squash.path.resolve())
    view = ScriptDirectory(str(usable[0].path.parent.parent), version_locations=[str(links)])
    weakref.finalize(view, shutil.rmtree, str(links), True)
    return view


def originals_digest(paths: list[Path]) -> str:
    """What the originals do, not how they are laid out: their syntax trees (comments and formatting left out)."""
    import hashlib

    digest = hashlib.sha256()
    for path in paths:
        digest.update(ast.dump(ast.parse(path.read_text())).encode() + b"\0")
    return digest.hexdigest()[:16]


def problems(migrations: Path, defined: dict[str, Path]) -> list[str]:
    """For `check`: squashes that no longer stand for their originals, or whose originals are half gone.
    `defined`: revision id -> version file, as read from versions/ (the graph may be broken: no Alembic here)."""
    out = []
    for squash in _read_squashes(migrations / SQUASHED_DIR):
        name = f"{SQUASHED_DIR}/{squash.path.name}"
        present = [rev for rev in squash.replaces if rev in defined]
        if squash.revision != squash.replaces[-1]:
            out.append(f"{name}: its revision {squash.revision} must be END's ({squash.replaces[-1]}).")
        elif not present:
            if squash.revision not in defined:
                out.append(f"{name}: its originals are deleted: move it into versions/ (it has END's id).")
        elif len(present) != len(squash.replaces):
            missing = ", ".join(r for r in squash.replaces if r not in present)
            out.append(f"{name}: originals {missing} are missing: keep all of {squash.replaces[0]}.."
                       f"{squash.replaces[-1]} until every database has passed it, then delete them all.")
        elif squash.digest and squash.digest != originals_digest([defined[r] for r in squash.replaces]):
            out.append(f"{name}: the originals changed since it was written, so fresh databases would get another "
                       f"schema: run `manage.py squashmigrations {squash.replaces[0]} {squash.replaces[-1]}` again "
                       "(delete the old squash first).")
    return out


def describe(script: Any) -> list[str]:
    """One line per squash, for showmigrations."""
    lines = []
    for squash in squashes(script):
        state = "originals still present" if _originals_present(script, squash) else "originals removed"
        lines.append(f"{squash.revision} squashes {squash.replaces[0]}..{squash.replaces[-1]} "
                     f"({len(squash.replaces)} revisions; {state}): {squash.path.name}")
    return lines


def ident(revision: str) -> str:
    """A revision id as part of a Python name: the carried revision's functions are _upgrade_<ident>()."""
    return "".join(c if c.isalnum() else "_" for c in revision)
