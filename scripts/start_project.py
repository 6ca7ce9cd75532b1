#!/usr/bin/env python3
"""Start your own project: remove the demo application (users and posts) and leave an empty one.

    python scripts/start_project.py [--force]

Afterwards the project has an empty history (migrations/versions/ without a revision), an empty models
module (project/app/models.py: a DeclarativeBase with the naming convention and no tables), a minimal
application (project/app: create_app with the /health routes and one example route, /example, that shows
the session dependency; no users/posts API; `manage.py shell` still works) and no demo tests (tests/demo/).
The tool (project/core), the settings, env.py and the tool's own tests (tests/, on tests/fixture_app) stay.
Then write your models and run `manage.py makemigrations -m init`.

It refuses, with one line and exit status 1, when git shows uncommitted changes to any file it would
delete or rewrite (your work would be lost), or when it cannot ask git; --force skips that check.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What the demo is made of: deleted.
DEMO_PATHS = [
    "migrations/versions",  # its revision files (the folder stays, with a .gitkeep)
    "project/app/api/users.py",
    "project/app/api/posts.py",
    "project/app/schemas.py",
    "tests/demo",
]
# Rewritten with the empty starting point below.
REWRITTEN = {
    "project/app/models.py": '''"""The application's models.

Add your tables here, then `python manage.py makemigrations -m "..."` writes the revision that creates them.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase

# Named constraints: SQLite batch mode can only drop what has a name, and the names then
# match on every engine. Keep it: every migration makemigrations writes relies on it.
# column_0_N_name names a multi-column index or constraint after all its columns (column_0_name would use
# the first only: an index on (a, b) would collide with one on a); for one column both give the same name.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


# The largest id an Integer primary key holds: 32-bit on every engine. A larger value in a request is
# refused by PostgreSQL with an error, while SQLite and MySQL quietly find nothing, so the API's ids and
# offsets are bounded by it (project.app.api.deps). BigInteger keys: 2**63 - 1.
MAX_ID = 2**31 - 1
''',
    "project/app/api/__init__.py": '''"""The application's REST API: include your routers here.

project.app.api.deps has what routes need: DatabaseDep (the request's session), pagination, get_or_404;
project.app.api.example shows a route that uses them.
"""

from fastapi import APIRouter

from project.app.api import example

router = APIRouter()
router.include_router(example.router)
''',
    "project/app/api/example.py": '''"""An example route on the request's database session (project.app.api.deps).

The route is a thin async function; its body is a plain function of a sync Session that `Database.run`
calls on the request's Session or AsyncSession, whichever DATABASE_URL's driver asks for. Once your
models have tables, a route reads the same way, e.g.

    NoteId = Annotated[int, id_path("note")]

    @router.get("/notes/{note_id}", response_model=NoteRead)
    async def get_note(note_id: NoteId, db: DatabaseDep) -> Note:
        return await db.run(get_or_404, Note, note_id)

Delete this module (and its line in project/app/api/__init__.py) when you have routes of your own.
"""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter
from sqlalchemy.orm import Session

from project.app.api.deps import DatabaseDep

router = APIRouter(prefix="/example", tags=["example"])


@router.get("")
async def database_clock(db: DatabaseDep) -> dict[str, str]:
    """The database's name and its own clock, read through the request's session."""
    return await db.run(_database_clock)


def _database_clock(session: Session) -> dict[str, str]:
    now = session.scalar(sa.select(sa.func.current_timestamp()))
    return {"database": session.get_bind().dialect.name, "now": str(now)}
''',
    "project/app/__init__.py": '''"""The application: models.py, api/, main.py (create_app), management/.

The tool in project.core knows it only through the settings that name it (TARGET_METADATA,
ASGI_APPLICATION, COMMAND_PACKAGES).
"""
''',
}
# Demo wording in files that otherwise stay as they are: (file, old, new).
RETITLED = [
    ("project/app/main.py", 'title="fastapi-manage demo"', 'title="fastapi-manage project"'),
    ("project/app/main.py",
     '        summary="Users and posts over SQLAlchemy 2, migrated by Alembic through manage.py.",\n', ""),
]


class Refused(Exception):
    """Starting the project would lose work, or cannot tell whether it would."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--force", action="store_true",
                        help="Delete and rewrite even files with uncommitted changes (or outside a git work tree).")
    args = parser.parse_args(argv)
    try:
        if not args.force:
            refuse_uncommitted(touched_paths())
    except Refused as exc:
        print(f"CommandError: {exc}", file=sys.stderr)
        return 1
    remove_demo()
    print("The demo is gone: empty history, empty models, a minimal app. Next:")
    print("  1. write your tables in project/app/models.py")
    print('  2. python manage.py makemigrations -m "init"')
    print("  3. python manage.py migrate && python manage.py showmigrations")
    if (ROOT / "dev.sqlite3").exists():
        print("Note: dev.sqlite3 holds the demo's tables; delete it before migrating (rm dev.sqlite3).")
    print("docs/ still describes the demo (users and posts) in its examples: edit them for your project.")
    return 0


def touched_paths() -> list[str]:
    """Every path the script deletes or rewrites, relative to the project root."""
    return [*DEMO_PATHS, *REWRITTEN, *{path for path, _, _ in RETITLED}]


def refuse_uncommitted(paths: list[str]) -> None:
    """Raise Refused when git reports a change not yet committed (staged, unstaged or untracked) under `paths`."""
    try:
        result = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--", *paths],
                                cwd=ROOT, capture_output=True, text=True)
    except OSError:
        raise Refused("git is not installed, so uncommitted changes cannot be ruled out; "
                      "install git or run again with --force.") from None
    if result.returncode != 0:
        raise Refused(f"{ROOT} is not a git work tree, so uncommitted changes cannot be ruled out; "
                      "run again with --force to delete the demo anyway.")
    changed = [line[3:] for line in result.stdout.splitlines() if line.strip()]
    if changed:
        shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
        raise Refused(f"uncommitted changes to files this would delete or rewrite ({shown}): "
                      "commit or stash them, or run again with --force.")


def remove_demo() -> None:
    versions = ROOT / "migrations" / "versions"
    for path in versions.glob("*.py"):
        path.unlink()
    shutil.rmtree(versions / "__pycache__", ignore_errors=True)
    versions.mkdir(parents=True, exist_ok=True)
    # git keeps no empty folder: without it a fresh clone would have nowhere to write 0001.
    (versions / ".gitkeep").touch()
    for name in DEMO_PATHS[1:]:
        path = ROOT / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    for name, text in REWRITTEN.items():
        (ROOT / name).write_text(text)
    for name, old, new in RETITLED:
        path = ROOT / name
        path.write_text(path.read_text().replace(old, new))


if __name__ == "__main__":
    sys.exit(main())
