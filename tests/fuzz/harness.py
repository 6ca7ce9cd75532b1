"""One seed, run as a team would: a project of its own, `makemigrations` per step, `migrate` on three engines
with rows in the tables, each result compared with `metadata.create_all()` of the same models.

Per seed (`run_seed`):

1. A project copy: this work tree's project/, settings/, migrations/, manage.py and alembic.ini copied to a
   temporary directory, then `scripts/start_project.py --force` there (an empty history, the scaffold's models
   module). Every command runs in the copy, as `python manage.py ...` with the copy first on PYTHONPATH.
2. Per step: the models module written (the scaffold's header, then the generated classes); `makemigrations
   --noinput`, or on a pseudo-terminal (pexpect) when the step renames something, answering "y" to exactly the
   renames the team made; then on each engine: a few rows inserted into every table (parents first), `migrate`,
   the reflected schema compared with create_all() of the models on a fresh database of the same engine, and
   the rows checked (counts; the values of columns the step left alone).
3. At the end: `makemigrations --check`; per engine, rows in every table, then back one revision at a time to
   zero (each state compared with what the same revision gave on the way up), and `migrate` again (compared
   with head); `squashmigrations FIRST LAST`, applied on a fresh database of each engine, compared with the
   originals' schema, then taken back to zero.

A failure is recorded with its kind (a stable key: what failed and how, without the seed's table names), the
seed, the step (or the end phase), the engine, one line saying what differed and the file involved. After a
failure on an engine that engine stops for the rest of the seed (its database is in an unknown state); the
others go on. The generated files and models are run as written: nothing is repaired by hand, so a file
without an import it needs, or a naming convention that names two objects alike, is a failure (with its
lines) and its consequences follow.
"""

from __future__ import annotations

import ast
import builtins
import datetime as dt
import decimal
import importlib.util
import io
import os
import random
import re
import shutil
import subprocess
import sys
import time
import traceback
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from .models import Step, generate, render
from .schema import Snapshot, differences, empty, snapshot

ROOT = Path(__file__).resolve().parents[2]
ENGINES = ("sqlite", "mysql", "postgresql")
ROWS_PER_STEP = 2
COMMAND_TIMEOUT = 300  # seconds: a guard against a hang, never reached by a healthy run
# The questioner's question for a revision that both expands and contracts (docs/phases.md).
PHASE_QUESTION = "This revision breaks the code running before it and adds what the new code needs"
# The question after a confirmed column rename: in one release (a rename) or in two phases (docs/phases.md).
RENAME_QUESTION = re.compile(r"How should \S+ become \S+\?")
# What the project copy needs of this work tree (the tool, the settings, the history's env.py, the scaffold).
PROJECT_FILES = ("project", "settings", "migrations", "manage.py", "alembic.ini", "scripts/start_project.py")


@dataclass
class Failure:
    kind: str  # a stable key, e.g. "migrate: NameError" or "squash schema: type"
    seed: int
    where: str  # "step 3", or an end phase: "downgrade to 0002", "migrate zero", "squash"...
    engine: str | None  # None: not engine-specific (makemigrations, the generated file)
    what: str  # one line: what differed or failed
    file: str | None = None  # the generated file involved, relative to the project copy
    details: list[str] = field(default_factory=list)  # a few more lines: the other differences, the change

    def replay(self, steps: int) -> str:
        return f"python -m tests.fuzz --seed {self.seed} --steps {steps}"


@dataclass
class SeedResult:
    seed: int
    steps: int
    engines: tuple[str, ...]
    failures: list[Failure] = field(default_factory=list)
    revisions: int = 0
    engine_steps: int = 0  # (step, engine) pairs migrated and compared
    seconds: float = 0.0
    project: Path | None = None


class Databases:
    """Fresh databases per engine: SQLite files under `workdir`, databases on the given servers (tests/conftest.py's
    pg_server/mysql_server, or scripts/dbservers.py's)."""

    def __init__(self, workdir: Path, servers: dict[str, Any]):
        self.workdir = workdir
        self.servers = servers

    def create(self, engine: str, label: str) -> str:
        name = f"fz_{label}_{uuid.uuid4().hex[:6]}"
        if engine == "sqlite":
            return f"sqlite:///{self.workdir / (name + '.sqlite3')}"
        return self.servers[engine].create_database(name)

    def drop(self, url: str) -> None:
        parsed = sa.make_url(url)
        if parsed.get_backend_name() == "sqlite":
            Path(parsed.database or "").unlink(missing_ok=True)
            return
        try:
            self.servers[_engine_of(url)].drop_database(parsed.database)
        except Exception as error:  # cleanup must not hide the run's result
            print(f"warning: could not drop {parsed.database}: {error}", file=sys.stderr)


def _engine_of(url: str) -> str:
    backend = sa.make_url(url).get_backend_name()
    return "mysql" if backend in ("mysql", "mariadb") else backend


# --- the project copy -----------------------------------------------------------------------------------------


class ProjectCopy:
    def __init__(self, path: Path):
        self.path = path
        path.mkdir(parents=True)
        ignore = shutil.ignore_patterns("__pycache__", ".cache", "*.sqlite3")
        for name in PROJECT_FILES:
            source, target = ROOT / name, path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, ignore=ignore)
            else:
                shutil.copy2(source, target)
        started = self.run("scripts/start_project.py", "--force")
        if started.returncode != 0:
            raise RuntimeError(f"start_project.py failed in {path}:\n{started.stdout}{started.stderr}")
        self.models_path = path / "project" / "app" / "models.py"
        self.scaffold = self.models_path.read_text()
        self.versions = path / "migrations" / "versions"

    def env(self, db_url: str | None = None) -> dict[str, str]:
        env = {**os.environ, "PYTHONPATH": str(self.path), "NO_COLOR": "1", "SETTINGS_MODULE": "dev"}
        if db_url:
            env["DEV_DATABASE_URL"] = db_url
        return env

    def run(self, *args: str, db_url: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, *args], cwd=self.path, env=self.env(db_url), capture_output=True,
                              text=True, timeout=COMMAND_TIMEOUT)

    def manage(self, *args: str, db_url: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.run("manage.py", *args, db_url=db_url)

    def files(self) -> set[Path]:
        return set(self.versions.glob("*.py"))

    def relative(self, path: Path) -> str:
        return str(path.relative_to(self.path))

    def makemigrations_tty(self, message: str, answer: Callable[[str, str], str]) -> tuple[int, str, list[str]]:
        """makemigrations on a real pseudo-terminal: each question is answered by `answer(question, text)`
        (`question` its prompt line, `text` all the terminal showed since the previous answer: a choice's question
        and options precede its prompt). Returns the exit status, what the terminal showed, and the questions
        asked."""
        import pexpect

        child = pexpect.spawn(sys.executable, ["manage.py", "makemigrations", "-m", message], cwd=str(self.path),
                              env={**self.env(), "TERM": "dumb"}, encoding="utf-8", timeout=COMMAND_TIMEOUT)
        child.logfile_read = screen = io.StringIO()
        asked = []
        try:
            while child.expect([r"[^\n]*(?:\[y/N\] |Select an option: |>>> )", pexpect.EOF]) == 0:
                question = child.after.strip()
                asked.append(question)
                child.sendline(answer(question, child.before + child.after))
        finally:
            child.close()
        return child.exitstatus if child.exitstatus is not None else -1, screen.getvalue(), asked


# --- classifying what went wrong ------------------------------------------------------------------------------

# An error's text -> a label without the seed's names. The first match wins; unknown errors fall back to their
# exception class, so that every failure has a stable kind.
ERROR_LABELS = [
    (r"NameError: name '\w+' is not defined", "NameError: the file uses a name it does not import"),
    (r"needed in a foreign key constraint", "an index a foreign key needs dropped before the foreign key"),
    (r"is of type boolean but default expression is of type integer", "an integer default on a boolean column"),
    (r'type "\w+" does not exist', "a type that does not exist on this engine"),
    (r"cannot drop type \w+ because other objects depend on it", "an enum type dropped while a column uses it"),
    (r"NOT NULL constraint failed|contains null values|cannot be null|doesn't have a default value|"
     r"Cannot add a NOT NULL column with default value NULL",
     "a NOT NULL column without a value for existing rows"),
    (r"because other objects depend on it|Cannot delete or update a parent row|is referenced by a foreign key|"
     r"FOREIGN KEY constraint failed|a foreign key constraint fails|Cannot drop table '\w+' referenced|"
     r"violates foreign key constraint",
     "a table dropped, or rows removed, while a foreign key refers to it"),
    (r"already exists|Duplicate key name|Duplicate column name", "something created twice"),
    (r"Duplicate entry|UNIQUE constraint failed|duplicate key value|could not create unique index",
     "duplicate values for a unique constraint"),
    (r"Data too long|value too long|Out of range|out of range", "a value that no longer fits"),
    (r"Can't DROP|does not exist|doesn't exist|no such (?:column|table|index)", "dropping something absent"),
]


def error_label(text: str) -> str:
    for pattern, label in ERROR_LABELS:
        if re.search(pattern, text):
            return label
    found = re.findall(r"\b([A-Z]\w*(?:Error|Exception))\b", text)
    specific = [name for name in found if name not in ("CommandError", "OperationalError", "ProgrammingError",
                                                       "DatabaseError", "IntegrityError", "InternalError")]
    return (specific or found or ["an error"])[-1]


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The command's own one-line error (its last line on stderr), cut to a readable length."""
    lines = [line.strip() for line in (result.stderr or result.stdout).splitlines() if line.strip()]
    picked = next((line for line in reversed(lines) if "Error" in line), lines[-1] if lines else "(no output)")
    return picked if len(picked) <= 400 else picked[:400] + " ..."


# --- one seed -------------------------------------------------------------------------------------------------


def run_seed(seed: int, steps: int, databases: Databases, workdir: Path, engines: tuple[str, ...] = ENGINES,
             log: Callable[[str], None] | None = None) -> SeedResult:
    """Run `seed` for `steps` steps on `engines`; the project copy is left in workdir (the caller removes it)."""
    started = time.monotonic()
    run = _SeedRun(seed, steps, databases, workdir, engines, log or (lambda line: None))
    try:
        run.run()
    except Exception as error:  # the harness's own bug: a failure of its own kind, not a crash of the whole run
        run.fail(f"fuzzer: {type(error).__name__}", "harness", None, f"{type(error).__name__}: {error}"[:400],
                 details=traceback.format_exc().splitlines()[-8:])
    finally:
        run.cleanup()
    run.result.seconds = time.monotonic() - started
    return run.result


class _SeedRun:
    def __init__(self, seed: int, steps: int, databases: Databases, workdir: Path, engines: tuple[str, ...],
                 log: Callable[[str], None]):
        self.seed = seed
        self.steps = generate(seed, steps)
        self.databases = databases
        self.workdir = workdir
        self.engines = engines
        self.log = log
        self.result = SeedResult(seed, steps, engines)
        self.urls: dict[str, str] = {}
        self.broken: set[str] = set()  # engines stopped for the rest of the seed
        self.revisions: list[tuple[int, str, Path]] = []  # (step, revision id, file)
        self.rev_of_step: dict[int, str | None] = {}
        self.migrated: dict[tuple[str, str | None], Snapshot] = {}  # (engine, revision) -> schema on the way up
        self.reported: dict[str, set[str]] = {e: set() for e in engines}  # schema differences already reported
        self.counter = 0  # every inserted value derives from it: values differ from row to row
        self.unasked: set[tuple[str, ...]] = set()  # renames not asked: their rows' losses are consequences
        self.keyless: set[tuple[str, str]] = set()  # (engine, table) whose INSERT without a key failed
        self.metadatas: dict[int, sa.MetaData] = {}  # step -> its models

    # --- recording ---

    def fail(self, kind: str, where: str, engine: str | None, what: str, file: Path | str | None = None,
             details: list[str] | None = None) -> None:
        if isinstance(file, Path):
            file = str(file.relative_to(self.workdir / "project"))
        details = list(details or [])
        if file and not kind.startswith(("file:", "makemigrations:")):
            backwards = kind.startswith(("downgrade", "squash downgrade"))
            details[:0] = _excerpt(self.workdir / "project" / file, what, "downgrade" if backwards else "upgrade")
        failure = Failure(kind, self.seed, where, engine, what, file, details)
        self.result.failures.append(failure)
        self.log(f"  FAIL [{kind}] seed {self.seed} {where}{f' [{engine}]' if engine else ''}: {what}")

    def stop(self, engine: str) -> None:
        self.broken.add(engine)

    # --- the run ---

    def run(self) -> None:
        self.project = ProjectCopy(self.workdir / "project")
        self.result.project = self.project.path
        header = self.project.scaffold
        self.urls = {engine: self.databases.create(engine, f"s{self.seed}") for engine in self.engines}
        previous: Step | None = None
        previous_metadata: sa.MetaData | None = None
        metadata = None
        for step in self.steps:
            self.log(f" seed {self.seed} step {step.number}: {'; '.join(step.changes)}")
            self.project.models_path.write_text(render(step.tables, header))
            metadata = self._load_models(step.number)
            self.metadatas[step.number] = metadata
            twice = _names_used_twice(metadata)
            if twice:  # the scaffold's naming convention: column_0_name named (a, b) and (a) alike
                self.fail("models: the scaffold's naming convention gives two objects one name",
                          f"step {step.number}", None, f"{', '.join(twice)}: project/app/models.py "
                          "(scripts/start_project.py) names two constraints or indexes alike",
                          details=[f"the step: {'; '.join(step.changes)}"])
            if not self._make_migration(step):
                return  # what follows would be compared with a history that does not have this step
            for engine in self.engines:
                if engine not in self.broken:
                    self._forward(engine, step, previous, previous_metadata, metadata)
                    self.result.engine_steps += 1
            previous, previous_metadata = step, metadata
        if metadata is not None:
            self._finish(metadata)

    def cleanup(self) -> None:
        for url in self.urls.values():
            self.databases.drop(url)

    def _load_models(self, number: int, path: Path | None = None) -> sa.MetaData:
        """The models module (written for this step) imported in this process, under a name of its own."""
        name = f"fuzz_models_{self.seed}_{number}_{uuid.uuid4().hex[:6]}"
        spec = importlib.util.spec_from_file_location(name, path or self.project.models_path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # SQLAlchemy resolves the Mapped[...] annotations through sys.modules
        try:
            spec.loader.exec_module(module)
        finally:
            del sys.modules[name]
        return module.Base.metadata

    # --- makemigrations ---

    def _make_migration(self, step: Step) -> bool:
        before = self.project.files()
        where = f"step {step.number}"
        message = f"step {step.number}"
        planned = {f"Was the table {old} renamed to {new}?" for old, new in step.table_renames.items()}
        planned |= {f"Was {table}.{old} renamed to {table}.{new} " for (table, old), new in step.column_renames.items()}
        asked: list[str] = []
        unexpected: list[str] = []
        if planned:
            def answer(question: str, text: str) -> str:
                if "[y/N]" in question:
                    return "y" if any(question.startswith(p) for p in planned) else "n"
                if RENAME_QUESTION.search(text):
                    # One release (a rename) or two phases (a new column kept in step by triggers, a backfill,
                    # the old column dropped): both mean the same rows at the step's end, and each is checked;
                    # which one, the seed and step pick.
                    return random.Random(f"{self.seed}-{step.number}-{RENAME_QUESTION.findall(text)}").choice("12")
                if PHASE_QUESTION in text:
                    # A step mixes what breaks running code (the rename) with additions: a team not rolling out
                    # in phases keeps the revision whole (no phase), as the non-interactive questioner does.
                    return "1"
                unexpected.append(question)  # every added NOT NULL column has a server default: nothing to ask
                return "2" if question.endswith("Select an option:") else "exit"

            status, output, asked = self.project.makemigrations_tty(message, answer)
        else:
            result = self.project.manage("makemigrations", "--noinput", "-m", message)
            status, output = result.returncode, result.stdout + result.stderr
        written = sorted(self.project.files() - before)
        if status != 0:
            fake = subprocess.CompletedProcess([], status, output, output)
            kind = "an unexpected question" if unexpected else error_label(output)
            what = f"asked {unexpected[0]!r}, then {error_line(fake)}" if unexpected else error_line(fake)
            self.fail(f"makemigrations: {kind}", where, None, what, details=[f"the step: {'; '.join(step.changes)}"])
            for path in written:
                path.unlink()
            return False
        if not written:
            self.rev_of_step[step.number] = None
            self.log(f"  step {step.number}: no changes detected")
            return True
        path = written[-1]
        revision = _revision_of(path)
        self.rev_of_step[step.number] = revision
        self.revisions.append((step.number, revision, path))
        self.result.revisions += 1
        source = "".join(written_path.read_text() for written_path in written)  # a phased rename writes three
        for prompt in sorted(planned):
            if not any(question.startswith(prompt) for question in asked):
                renamed = _rename_from_prompt(prompt, step)
                self.unasked.add(renamed)
                self.fail(f"makemigrations: a {'table' if len(renamed) == 1 else 'column'} rename not asked",
                          where, None, f"{prompt.strip()} was not asked: the file drops and re-creates it, "
                          "losing its rows' values", path, details=_lines_about(source, renamed[-1]))
        for written_path in written:
            self._check_imports(written_path, where)
        return True

    def _check_imports(self, path: Path, where: str) -> None:
        """A type rendered as `project.core.db.UTCDateTime(...)` (or the app's `project.app.models.Slug(...)`)
        without its import makes every migrate of the file fail with NameError: recorded here with the lines, so
        that the failure names its cause; the file is left as written (the engines then fail on it)."""
        source = path.read_text()
        missing = _unimported(source)
        if not missing:
            return
        lines = source.splitlines()
        shown = [f"line {n}: {lines[n - 1].strip()}" for n in sorted({n for _, n, _ in missing})][:3]
        names = sorted({dotted for _, _, dotted in missing})
        self.fail("file: uses a name it does not import", where, None,
                  f"{', '.join(names)} used without an import: migrate fails with NameError", path, details=shown)

    # --- one step on one engine ---

    def _forward(self, engine: str, step: Step, previous: Step | None, previous_metadata: sa.MetaData | None,
                 metadata: sa.MetaData) -> None:
        url = self.urls[engine]
        where = f"step {step.number}"
        revision = self.rev_of_step[step.number]
        file = self._file_of(revision)
        before: dict[str, dict[Any, dict[str, Any]]] = {}
        if previous is not None and previous_metadata is not None:
            if not self._insert_rows(engine, previous_metadata, where):
                return
            before = self._read_rows(url, [t.name for t in previous.tables])
        if revision is not None:
            result = self.project.manage("migrate", db_url=url)
            if result.returncode != 0:
                self.fail(f"migrate: {error_label(result.stderr + result.stdout)}", where, engine, error_line(result),
                          file, details=[f"the step: {'; '.join(step.changes)}"])
                self.stop(engine)
                return
        got = snapshot(url)
        self.migrated[(engine, revision)] = got
        want = self._reference(engine, metadata, where)
        if want is not None:
            self._report_differences("schema", where, engine, differences(got, want), file, step)
        if previous is not None:
            self._check_rows(engine, step, previous, before, file)

    def _reference(self, engine: str, metadata: sa.MetaData, where: str) -> Snapshot | None:
        """create_all() of the models on a fresh database of the engine, reflected."""
        url = self.databases.create(engine, f"ref{self.seed}")
        try:
            db = sa.create_engine(url, poolclass=sa.pool.NullPool)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    metadata.create_all(db)
            finally:
                db.dispose()
            return snapshot(url)
        except sa.exc.DBAPIError as error:
            self.fail(f"models: create_all fails: {error_label(str(error))}", where, engine,
                      str(error.orig).splitlines()[0])
            return None
        finally:
            self.databases.drop(url)

    def _report_differences(self, phase: str, where: str, engine: str, diffs: list[tuple[str, str]],
                            file: str | Path | None, step: Step | None = None, compared: str = "") -> None:
        """One failure per kind of difference; a difference already reported for this engine is not repeated
        at the next steps (it is the same failure, carried forward)."""
        fresh = [(category, text) for category, text in diffs if text not in self.reported[engine]]
        self.reported[engine] |= {text for _, text in diffs}
        by_category: dict[str, list[str]] = {}
        for category, text in fresh:
            by_category.setdefault(category, []).append(text)
        for category, texts in by_category.items():
            details = texts[1:6] + ([f"... and {len(texts) - 6} more"] if len(texts) > 6 else [])
            if step is not None:
                details.append(f"the step: {'; '.join(step.changes)}")
            self.fail(f"{phase}: {category}", where, engine, texts[0] + compared, file, details)

    # --- rows ---

    def _insert_rows(self, engine: str, metadata: sa.MetaData, where: str) -> bool:
        """ROWS_PER_STEP rows into every table of the models the database is at, parents first. A key is left to
        the database; where it cannot make one (BigInteger on SQLite), that is recorded and the row gets one."""
        db = sa.create_engine(self.urls[engine], poolclass=sa.pool.NullPool)
        try:
            with warnings.catch_warnings(), db.begin() as connection:
                warnings.simplefilter("ignore")
                for table in metadata.sorted_tables:
                    for _ in range(ROWS_PER_STEP):
                        self.counter += 1
                        values = self._row(connection, table, engine, self.counter)
                        try:
                            with connection.begin_nested():
                                connection.execute(table.insert().values(values))
                        except sa.exc.IntegrityError as error:
                            if "id" in values or not _no_key(error):
                                raise
                            if (engine, table.name) not in self.keyless:  # once per table: its every row fails
                                self.keyless.add((engine, table.name))
                                self.fail("rows: INSERT without a key fails", where, engine,
                                          f"INSERT INTO {table.name} without an id: "
                                          f"{str(error.orig).splitlines()[0]} ({table.c.id.type} primary key)")
                            top = connection.execute(sa.select(sa.func.max(table.c.id))).scalar() or 0
                            connection.execute(table.insert().values({**values, "id": top + 1}))
            return True
        except sa.exc.DBAPIError as error:
            self.fail(f"rows: INSERT fails: {error_label(str(error))}", where, engine,
                      str(error.orig).splitlines()[0], details=[str(error.statement)[:300]])
            self.stop(engine)
            return False
        finally:
            db.dispose()

    def _row(self, connection: Any, table: sa.Table, engine: str, n: int) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for column in table.columns:
            if column.primary_key:
                continue
            if column.server_default is not None and n % 2:
                continue  # every other row takes the server default
            if column.nullable and n % 3 == 0:
                values[column.name] = None
                continue
            if column.foreign_keys:
                parent = next(iter(column.foreign_keys)).column.table
                ids = connection.execute(sa.select(parent.c.id).order_by(parent.c.id)).scalars().all()
                values[column.name] = ids[n % len(ids)] if ids else None
                continue
            values[column.name] = _value(column.type, n, engine)
        return values

    def _read_rows(self, url: str, tables: list[str]) -> dict[str, dict[Any, dict[str, Any]]]:
        db = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            with db.connect() as connection:
                existing = set(sa.inspect(connection).get_table_names())
                quote = connection.dialect.identifier_preparer.quote
                rows = {}
                for table in tables:
                    if table in existing:
                        result = connection.exec_driver_sql(f"SELECT * FROM {quote(table)}")
                        rows[table] = {row["id"]: dict(row) for row in result.mappings()}
                return rows
        finally:
            db.dispose()

    def _check_rows(self, engine: str, step: Step, previous: Step, before: dict[str, dict[Any, dict[str, Any]]],
                    file: str | None) -> None:
        """Every table the step kept has its rows, every column it kept its values (a retyped one: the same value
        in the new type, e.g. a date as that day's midnight)."""
        where = f"step {step.number}"
        kept = {old.name: step.table_renames.get(old.name, old.name) for old in previous.tables}
        kept = {old: new for old, new in kept.items() if step.table(new) is not None}
        after = self._read_rows(self.urls[engine], list(kept.values()))
        for old, new in sorted(kept.items()):
            if (old,) in self.unasked or new not in after:
                continue  # a rename not asked: already recorded, the loss is its consequence
            was, now = before.get(old, {}), after[new]
            if len(was) != len(now):
                self.fail("rows: lost", where, engine, f"{new}: {len(was)} rows before the migration, "
                          f"{len(now)} after", file, details=[f"the step: {'; '.join(step.changes)}"])
                continue
            table = step.table(new)
            assert table is not None
            for column in previous.table(old).columns:  # type: ignore[union-attr]
                name = step.column_renames.get((new, column.name), column.name)
                if name not in table.names() or (new, column.name, name) in self.unasked:
                    continue
                same = _same_converted if (new, name) in step.retyped else _same
                changed = [(key, row[column.name], now.get(key, {}).get(name)) for key, row in sorted(was.items())
                           if not same(row.get(column.name), now.get(key, {}).get(name))]
                if changed:
                    key, old_value, new_value = changed[0]
                    self.fail("rows: values changed", where, engine,
                              f"{new}.{name}: {len(changed)} of {len(was)} rows changed, e.g. id {key}: "
                              f"{old_value!r} before, {new_value!r} after", file,
                              details=[f"the step: {'; '.join(step.changes)}"])

    # --- the end: back to zero, up again, the squash ---

    def _finish(self, metadata: sa.MetaData) -> None:
        check = self.project.manage("makemigrations", "--check")
        if check.returncode != 0:
            self.fail("makemigrations --check: changes left after the last step", "end", None, error_line(check))
        if not self.revisions:
            return
        head = self.revisions[-1][1]
        for engine in self.engines:
            if engine in self.broken:
                continue
            if not self._insert_rows(engine, metadata, "end"):
                continue
            if self._walk_down(engine):
                self._up_again(engine, head)
        self._squash(head, metadata)

    def _walk_down(self, engine: str) -> bool:
        """Back one revision at a time, with rows in the tables; each state compared with the way up."""
        url = self.urls[engine]
        chain = [rev for _, rev, _ in self.revisions]
        for index in range(len(chain) - 1, -1, -1):
            undone = chain[index]
            target = chain[index - 1] if index else "zero"
            where = f"migrate {target}"
            file = self._file_of(undone)
            lost = self._values_lost(undone)
            if lost:
                self._delete_rows(url, undone, lost)
            result = self.project.manage("migrate", target, db_url=url)
            if result.returncode != 0:
                self.fail(f"downgrade: {error_label(result.stderr + result.stdout)}", where, engine,
                          error_line(result), file, details=[f"undoing {undone}"])
                self.stop(engine)
                return False
            got = snapshot(url)
            if target == "zero":
                if not empty(got):
                    leftovers = sorted(got["tables"]) + [f"enum type {n}" for n in sorted(got["enums"])]
                    self.fail("downgrade: left behind at zero", where, engine, ", ".join(leftovers), file)
            else:
                self._report_differences("downgrade schema", where, engine,
                                         differences(got, self.migrated[(engine, target)], "downgraded",
                                                     "same revision on the way up"), file,
                                         compared=f" (undoing {undone})")
        return True

    def _values_lost(self, revision: str) -> list[str]:
        """The NOT NULL columns the revision's step dropped that a unique constraint covered or that were foreign
        keys: its downgrade adds each back with one value in every row (the dropped values are gone), so that the
        unique constraint cannot come back while the table has two rows, nor the foreign key unless that value
        happens to be a parent's key. That failure is the data's, not the tool's: see `_delete_rows`."""
        step = next(number for number, rev, _ in self.revisions if rev == revision)
        if step == 1:
            return []
        before, after = self.steps[step - 2], self.steps[step - 1]
        lost = []
        for table in before.tables:
            kept = after.table(after.table_renames.get(table.name, table.name))
            for column in table.columns:
                renamed = after.column_renames.get((table.name, column.name), column.name)
                covered = column.unique or column.kind == "fk" or any(column.name in group for group in table.uniques)
                if covered and not column.nullable and (kept is None or renamed not in kept.names()):
                    lost.append(f"{table.name}.{column.name}")
        return lost

    def _delete_rows(self, url: str, revision: str, lost: list[str]) -> None:
        """Empty the tables before undoing `revision`, as a user would have to: the walk down goes on through the
        revisions before it (their downgrades are checked on empty tables from there)."""
        step = next(number for number, rev, _ in self.revisions if rev == revision)
        db = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            with db.begin() as connection:
                for table in reversed(self.metadatas[step].sorted_tables):
                    connection.execute(table.delete())
        finally:
            db.dispose()
        self.log(f"  before undoing {revision}: rows deleted ({', '.join(lost)}: NOT NULL, unique or a foreign key, "
                 "dropped)")

    def _up_again(self, engine: str, head: str) -> None:
        url = self.urls[engine]
        result = self.project.manage("migrate", db_url=url)
        if result.returncode != 0:
            self.fail(f"migrate again: {error_label(result.stderr + result.stdout)}", "migrate after zero", engine,
                      error_line(result))
            self.stop(engine)
            return
        self._report_differences("migrate again schema", "migrate after zero", engine,
                                 differences(snapshot(url), self.migrated[(engine, head)], "re-migrated",
                                             "first migration"), None)

    def _squash(self, head: str, metadata: sa.MetaData) -> None:
        first = self.revisions[0][1]
        if first == head:
            return
        result = self.project.manage("squashmigrations", first, head)
        if result.returncode != 0:
            self.fail(f"squashmigrations: {error_label(result.stderr + result.stdout)}", "squash", None,
                      error_line(result))
            return
        squashed = sorted((self.project.path / "migrations" / "squashed").glob("*.py"))
        file = squashed[-1] if squashed else None
        for engine in self.engines:
            # The originals' schema at head; on an engine where they failed, the models' own (what they should give).
            against, name = self.migrated.get((engine, head)), "originals"
            if against is None:
                against, name = self._reference(engine, metadata, "squash"), "models"
            url = self.databases.create(engine, f"sq{self.seed}")
            try:
                result = self.project.manage("migrate", db_url=url)
                if result.returncode != 0:
                    self.fail(f"squash migrate: {error_label(result.stderr + result.stdout)}", "squash", engine,
                              error_line(result), file)
                    continue
                if against is not None:
                    self._report_differences("squash schema", "squash", engine,
                                             differences(snapshot(url), against, "squashed", name), file)
                result = self.project.manage("migrate", "zero", db_url=url)
                if result.returncode != 0:
                    self.fail(f"squash downgrade: {error_label(result.stderr + result.stdout)}", "squash zero",
                              engine, error_line(result), file)
                elif not empty(got := snapshot(url)):
                    self.fail("squash downgrade: left behind at zero", "squash zero", engine,
                              ", ".join(sorted(got["tables"]) + sorted(got["enums"])), file)
            finally:
                self.databases.drop(url)

    def _file_of(self, revision: str | None) -> str | None:
        for _, rev, path in self.revisions:
            if rev == revision:
                return self.project.relative(path)
        return None


# --- helpers --------------------------------------------------------------------------------------------------


def _revision_of(path: Path) -> str:
    match = re.search(r"^revision(?::[^=]*)?\s*=\s*['\"]([^'\"]+)['\"]", path.read_text(), flags=re.MULTILINE)
    return match.group(1) if match else path.name.split("_", 1)[0]


def _rename_from_prompt(prompt: str, step: Step) -> tuple[str, ...]:
    """("old_table",) for a table rename, (table, old, new) for a column rename."""
    for old, new in step.table_renames.items():
        if prompt.startswith(f"Was the table {old} renamed to {new}?"):
            return (old,)
    for (table, old), new in step.column_renames.items():
        if prompt.startswith(f"Was {table}.{old} renamed"):
            return (table, old, new)
    return (prompt,)


def _lines_about(source: str, name: str) -> list[str]:
    """The upgrade's lines that drop or create `name`: what the file does instead of a rename."""
    upgrade = source.split("def downgrade")[0]
    return [line.strip() for line in upgrade.splitlines()
            if f"'{name}'" in line and re.search(r"drop_|add_column|create_table", line)][:3]


# Words of an error or a difference that name no object of the file.
_NOT_NAMES = {"column", "table", "index", "relation", "constraint", "foreign", "key", "type", "does", "not", "exist",
              "null", "values", "contains", "failed", "migrated", "models", "squashed", "originals", "database",
              "missing", "from", "the", "unique", "primary", "default", "server"}


def _excerpt(path: Path, text: str, function: str) -> list[str]:
    """The lines of the file's upgrade() or downgrade() that name what `text` (an error, a difference) names: the
    statement that failed, or the one that wrote what differs. At most two, those naming the most."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    start = next((n for n, line in enumerate(lines) if line.startswith(f"def {function}(")), None)
    if start is None:
        return []
    end = next((n for n in range(start + 1, len(lines)) if lines[n].startswith("def ")), len(lines))
    words = {w for w in re.findall(r"[A-Za-z_]\w+", text) if w.lower() not in _NOT_NAMES}
    scored = []
    for n in range(start + 1, end):
        line = lines[n].strip()
        if line.startswith("with op.batch_alter_table("):
            continue  # names only the table: every statement of the batch is in it
        score = sum(f"'{w}'" in line for w in words)
        if score:
            scored.append((-score, n, line))
    shown = sorted(sorted(scored)[:2], key=lambda item: item[1])
    return [f"line {n + 1}: {line if len(line) <= 160 else line[:160] + ' ...'}" for _, n, line in shown]


def _names_used_twice(metadata: sa.MetaData) -> list[str]:
    seen: set[str] = set()
    twice = []
    for table in metadata.sorted_tables:
        named = [*(index.name for index in table.indexes), *(c.name for c in table.constraints)]
        for name in named:
            if name is None:
                continue
            if str(name) in seen:
                twice.append(f"{name} ({table.name})")
            seen.add(str(name))
    return twice


def _unimported(source: str) -> list[tuple[str, int, str]]:
    """(name, line, dotted expression) for each name the module reads but never binds: `project` in
    `project.core.db.UTCDateTime(...)` when the file imports no `project`."""
    tree = ast.parse(source)
    bound = set(dir(builtins))
    parents: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
        if isinstance(node, ast.Import):
            bound |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            bound |= {alias.asname or alias.name for alias in node.names}
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
    missing = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in bound:
            top: ast.AST = node
            while isinstance(parents.get(top), ast.Attribute):
                top = parents[top]
            missing.append((node.id, node.lineno, ast.unparse(top)))
    return missing


def _same(before: Any, after: Any) -> bool:
    return bool(before == after)


def _same_converted(before: Any, after: Any) -> bool:
    """`after` is `before` converted to the column's new type: the same number, the same text, the same day
    (as the engine's driver returns them: SQLite gives text, the servers date and datetime objects)."""
    if before is None or after is None:
        return before is after
    if isinstance(before, int | float | decimal.Decimal) and isinstance(after, int | float | decimal.Decimal):
        return decimal.Decimal(str(before)) == decimal.Decimal(str(after))
    was, now = _as_text(before), _as_text(after)
    return now == was or (len(was) == 10 and now.startswith(was + " 00:00:00"))


def _as_text(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None).isoformat(" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)


def _no_key(error: sa.exc.IntegrityError) -> bool:
    """The database did not generate the primary key (SQLite: a BIGINT key is no rowid alias)."""
    text = str(error.orig)
    return bool(re.search(r"NOT NULL constraint failed: \w+\.id|null value in column \"id\"|Field 'id' doesn't have",
                          text))


def _value(type_: Any, n: int, engine: str) -> Any:
    """A value for a column of `type_`, different for each n (the counter): unique constraints hold."""
    from project.core.db import UTCDateTime

    # Midnights, a day apart: a Date column retyped to a DateTime and back keeps every value, and its uniqueness.
    moment = dt.datetime(2021, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=n)
    if isinstance(type_, UTCDateTime):
        return moment
    if isinstance(type_, sa.types.TypeDecorator):
        type_ = type_.impl_instance
    if isinstance(type_, sa.Enum):
        return type_.enums[n % len(type_.enums)]
    if isinstance(type_, sa.Boolean):
        return n % 2 == 0
    if isinstance(type_, sa.Integer):  # small even in a BigInteger: a downgrade to Integer must hold it
        return n
    if isinstance(type_, sa.Numeric):
        return decimal.Decimal(n % 100_000) + decimal.Decimal("0.25")
    if isinstance(type_, sa.DateTime):
        # PostgreSQL's timestamptz takes the zone; MySQL and SQLite store the UTC wall time.
        return moment if engine == "postgresql" else moment.replace(tzinfo=None)
    if isinstance(type_, sa.Date):
        return dt.date(2020, 1, 1) + dt.timedelta(days=n)
    if isinstance(type_, sa.JSON):
        return {"n": n, "tags": ["a", "b"]}
    if isinstance(type_, sa.LargeBinary):
        return f"b{n}".encode()
    if isinstance(type_, sa.Text):
        return f"text {n}"
    if isinstance(type_, sa.String):
        return f"v{n}"
    raise TypeError(f"no value for {type_!r}")
