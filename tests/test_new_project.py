"""A new project: an empty history and its own models, from the first makemigrations to migrate zero.

- With TARGET_METADATA on a models module of its own and an empty versions folder, `makemigrations -m init`
  writes 0001, which migrates up, down to zero and up again on each engine.
- scripts/start_project.py, run on a copy of this work tree, removes the demo and leaves a project where
  the same steps work; it refuses (one line, exit 1) when that would lose uncommitted work.
The tool's whole suite without the demo is scripts/check_without_demo.sh (`make test` runs it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import sqlalchemy as sa
from conftest import ROOT
from migcopy import fixture_copy, one_clean_line
from servers import table_names

TOOL_TABLES = {"alembic_version", "alembic_migration_log", "alembic_migration_fleet"}  # what migrate makes

# A domain neither the demo nor the fixture application has, with what a first revision meets on three
# engines: a foreign key, a unique constraint, an index, a server default and a PostgreSQL enum type.
SHOP_MODELS = '''
import enum

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class Kind(enum.StrEnum):
    retail = "retail"
    wholesale = "wholesale"


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(255), unique=True)
    kind: Mapped[Kind] = mapped_column(sa.Enum(Kind, name="customer_kind"), server_default="retail")


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"))
    reference: Mapped[str] = mapped_column(sa.String(40), index=True)
'''


def _ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_first_revision_from_other_models_migrates_up_and_down(db_url: str, tmp_path: Path) -> None:
    copy = fixture_copy(tmp_path)
    for path in copy.versions.glob("*.py"):
        path.unlink()
    (tmp_path / "shop_models.py").write_text(SHOP_MODELS)
    settings_file = tmp_path / f"{copy.module}.py"
    settings_file.write_text(settings_file.read_text() + 'TARGET_METADATA = "shop_models:Base.metadata"\n')

    written = _ok(copy.manage("makemigrations", "-m", "init", db_url=db_url))
    [revision] = re.findall(r"  - (0001_[0-9a-f]{6}) init", written)
    [first] = copy.versions.glob("*.py")
    assert first.name == f"{revision}_init.py"
    # PostgreSQL keeps an enum type after DROP TABLE: the downgrade drops it (a no-op elsewhere).
    assert "sa.Enum(name='customer_kind').drop(op.get_bind(), checkfirst=True)" in first.read_text()
    assert _ok(copy.manage("check", db_url=db_url)).strip() == "System check identified no issues."

    for _ in range(2):  # up, down, and up again: the downgrade leaves nothing that blocks the next upgrade
        up = _ok(copy.manage("migrate", db_url=db_url))
        assert f"Applying {revision} init... OK" in up
        assert table_names(db_url) == TOOL_TABLES | {"customers", "orders"}
        assert f" [X] {revision} init" in _ok(copy.manage("showmigrations", db_url=db_url))
        _ok(copy.manage("migrate", "zero", db_url=db_url))
        assert table_names(db_url) == TOOL_TABLES
        assert f" [ ] {revision} init" in _ok(copy.manage("showmigrations", db_url=db_url))


# --- scripts/start_project.py on a copy of this work tree --------------------------------------------


def copy_work_tree(dest: Path) -> Path:
    """What git tracks or would add here (uncommitted edits included), committed in a new repository at dest."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    existing = "\0".join(n for n in names if n and (os.path.lexists(ROOT / n)))
    dest.mkdir()
    packed = subprocess.run(["tar", "--null", "--no-recursion", "-T", "-", "-cf", "-"], cwd=ROOT,
                            input=existing.encode(), capture_output=True, check=True).stdout
    subprocess.run(["tar", "-xf", "-", "-C", str(dest)], input=packed, check=True)
    for args in (["init", "-q"], ["add", "-A"],
                 ["-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-qm", "copy"]):
        subprocess.run(["git", *args], cwd=dest, check=True, capture_output=True)
    return dest


# README's steps: each engine through the project's own settings for it, and its URL variable.
README_SETTINGS = {"sqlite": ("dev", "DEV_DATABASE_URL"), "mysql": ("test", "TEST_DATABASE_URL"),
                   "postgresql": ("prod", "PROD_DATABASE_URL")}


def in_copy(project: Path, *args: str, db_url: str | None = None, **kwargs) -> subprocess.CompletedProcess:
    """`python ARGS` in the copy, importing the copy's packages (not this work tree's editable install).
    With db_url, the settings README names for its engine (dev, test or prod) point at it."""
    env = {**os.environ, "PYTHONPATH": str(project), "NO_COLOR": "1", "SETTINGS_MODULE": "dev"}
    if db_url:
        settings, variable = README_SETTINGS[sa.make_url(db_url).get_backend_name()]
        env.update({"SETTINGS_MODULE": settings, variable: db_url})
    return subprocess.run([sys.executable, *args], cwd=project, env=env, capture_output=True, text=True,
                          timeout=300, **kwargs)


DEMO_FILES = ["project/app/api/users.py", "project/app/api/posts.py", "project/app/schemas.py",
              "tests/demo", "migrations/versions/0001_create_users_and_posts.py"]


def test_start_project_refuses_to_lose_uncommitted_work(tmp_path: Path) -> None:
    project = copy_work_tree(tmp_path / "project")
    models = project / "project" / "app" / "models.py"
    models.write_text(models.read_text() + "\n# my own work, not committed yet\n")

    present = sorted(str(p.relative_to(project)) for p in project.rglob("*") if ".git" not in p.parts)

    refused = in_copy(project, "scripts/start_project.py")
    line = one_clean_line(refused)
    assert refused.returncode == 1
    assert line.startswith("CommandError: uncommitted changes") and "project/app/models.py" in line
    assert "--force" in line
    after = sorted(str(p.relative_to(project)) for p in project.rglob("*") if ".git" not in p.parts)
    assert after == present, "a refused run must delete nothing"
    assert "my own work" in models.read_text()

    # Not a git work tree: it cannot tell, so it refuses too.
    subprocess.run(["rm", "-rf", str(project / ".git")], check=True)
    assert "not a git work tree" in one_clean_line(in_copy(project, "scripts/start_project.py"))

    forced = in_copy(project, "scripts/start_project.py", "--force")
    assert forced.returncode == 0, forced.stderr
    assert not any((project / name).exists() for name in DEMO_FILES)


def test_start_project_then_first_migration(db_url: str, tmp_path: Path) -> None:
    project = copy_work_tree(tmp_path / "project")
    started = in_copy(project, "scripts/start_project.py")
    assert started.returncode == 0, started.stderr
    assert "makemigrations" in started.stdout

    # What is left: an empty history, models without tables, a minimal app, no demo tests.
    assert not any((project / name).exists() for name in DEMO_FILES)
    versions = project / "migrations" / "versions"
    assert list(versions.glob("*.py")) == [] and (versions / ".gitkeep").exists()
    assert (project / "migrations" / "env.py").exists() and (project / "tests" / "fixture_app").exists()
    empty = in_copy(project, "-c", "from project.app.models import Base; print(len(Base.metadata.tables))")
    assert empty.stdout.strip() == "0", empty.stderr
    assert _ok(in_copy(project, "manage.py", "makemigrations", "--check")).strip() == "No changes detected"
    assert _ok(in_copy(project, "manage.py", "check")).strip() == "System check identified no issues."
    app = in_copy(project, "-c", textwrap.dedent("""
        from fastapi.testclient import TestClient
        from project.app.main import create_app
        client = TestClient(create_app())
        print(client.get("/health").status_code, client.get("/users").status_code)
    """))
    assert app.stdout.split() == ["200", "404"], app.stderr

    # The user's first model, then the README's steps. An index on `owner` and one on (owner, text): the
    # scaffold's naming convention names the composite one after both columns, so they do not collide.
    models = project / "project" / "app" / "models.py"
    models.write_text(models.read_text() + textwrap.dedent("""

        class Note(Base):
            __tablename__ = "notes"
            __table_args__ = (sa.Index(None, "owner", "text"),)

            id: Mapped[int] = mapped_column(primary_key=True)
            owner: Mapped[str] = mapped_column(sa.String(40), index=True)
            text: Mapped[str] = mapped_column(sa.String(200))
    """))
    models.write_text(models.read_text().replace("from sqlalchemy.orm import DeclarativeBase\n",
                                                 "from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column\n"))
    written = _ok(in_copy(project, "manage.py", "makemigrations", "-m", "init"))
    [revision] = re.findall(r"  - (0001_[0-9a-f]{6}) init", written)
    assert (versions / f"{revision}_init.py").exists()
    assert _ok(in_copy(project, "manage.py", "check")).strip() == "System check identified no issues."

    assert f"Applying {revision} init... OK" in _ok(in_copy(project, "manage.py", "migrate", db_url=db_url))
    assert table_names(db_url) == TOOL_TABLES | {"notes"}
    engine = sa.create_engine(db_url)
    try:
        indexes = {ix["name"]: ix["column_names"] for ix in sa.inspect(engine).get_indexes("notes")}
    finally:
        engine.dispose()
    assert indexes == {"ix_notes_owner": ["owner"], "ix_notes_owner_text": ["owner", "text"]}
    assert f" [X] {revision} init" in _ok(in_copy(project, "manage.py", "showmigrations", db_url=db_url))
    shell = _ok(in_copy(project, "manage.py", "shell", "-c", "print(sorted(n for n in dir() if n[0].isupper()))",
                        db_url=db_url))
    assert shell.strip() == "['Base', 'Note']"
    zero = ["manage.py", "migrate", "zero"]
    if db_url.startswith("postgresql"):  # prod settings confirm destructive steps (CONFIRM_DESTRUCTIVE)
        assert "drops table notes" in one_clean_line(in_copy(project, *zero, db_url=db_url))
        assert table_names(db_url) == TOOL_TABLES | {"notes"}
        zero.append("--allow-destructive")
    _ok(in_copy(project, *zero, db_url=db_url))
    assert table_names(db_url) == TOOL_TABLES



# Every module of the application the script leaves, imported in a fresh interpreter; then the app started
# (its lifespan connects) and asked for /health and for the example route, which runs a query through the
# session dependency on the test's database.
SERVE_SCAFFOLD = """
import importlib, json, pkgutil
import project.app
modules = [m.name for m in pkgutil.walk_packages(project.app.__path__, "project.app.")]
for name in modules:
    importlib.import_module(name)
from fastapi.testclient import TestClient
from project.app.main import create_app
with TestClient(create_app()) as client:
    health, example = client.get("/health"), client.get("/example")
print(json.dumps({"modules": modules, "health": health.status_code, "example": example.status_code,
                  "body": example.json()}))
"""


def test_start_project_leaves_an_app_that_imports_and_serves(db_url: str, tmp_path: Path) -> None:
    project = copy_work_tree(tmp_path / "project")
    _ok(in_copy(project, "scripts/start_project.py"))

    served = json.loads(_ok(in_copy(project, "-c", SERVE_SCAFFOLD, db_url=db_url)).splitlines()[-1])
    assert {"project.app.api.deps", "project.app.api.example", "project.app.main", "project.app.asgi",
            "project.app.models"} <= set(served["modules"])
    assert (served["health"], served["example"]) == (200, 200), served
    assert served["body"]["database"] == sa.make_url(db_url).get_backend_name()
    assert served["body"]["now"][:2] == "20"  # the database's clock: a date, whatever the engine's type for it

    # The scaffold's own words name what the code has.
    api = (project / "project" / "app" / "api" / "__init__.py").read_text()
    assert "SessionDep" not in api and "DatabaseDep" in api
    assert "%(column_0_name)s" not in (project / "project" / "app" / "models.py").read_text()
