from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from project.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    stops_on_sigterm = True
    help = (
        "Bring the database to a revision: head (default), zero, or an id or unique prefix.\n"
        "A target behind the current revision unapplies the revisions after it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("target", nargs="?", default="head", help="head (default), zero, or a revision id/prefix.")
        parser.add_argument("--plan", action="store_true", help="Show what would run; change nothing.")
        parser.add_argument("--fake", action="store_true", help="Record the target revision without running SQL.")
        parser.add_argument("--check", action="store_true", help="Exit 1 when migrations are unapplied.")
        parser.add_argument("--fake-initial", action="store_true",
                            help="On a database with tables but no recorded revision: record the first revision "
                                 "as applied when the tables are exactly what it creates, else name what differs.")
        parser.add_argument("--prune", action="store_true",
                            help="Only delete the applied log's rows of revisions whose files were removed.")
        parser.add_argument("--allow-destructive", action="store_true",
                            help="Run steps that drop or narrow data even when CONFIRM_DESTRUCTIVE is on.")
        parser.add_argument("--break-running-instances", action="store_true",
                            help="Apply contract revisions even while live app instances run code older than "
                                 "them: those instances then fail (docs/phases.md).")
        parser.add_argument("--sql", action="store_true",
                            help="Write the deploy SQL script instead of migrating; never connects. The database's "
                                 "revision is unknown offline: TARGET may be a range A:B, else --from (default base).")
        parser.add_argument("--from", dest="from_revision", default="base", metavar="REV",
                            help="With --sql: the revision the database is at (default base).")
        parser.add_argument("-o", "--output", metavar="FILE", help="With --sql: write the script to FILE.")
        parser.add_argument("--phase", choices=["expand", "contract"],
                            help="With --sql: only the revisions before the first contract revision (expand: run "
                                 "before the new code starts), or from it on (contract: once no old code runs).")

    def handle(self, *args: Any, **options: Any) -> None:
        from project.core.errors import MigrationError

        if options["sql"]:
            if options["fake_initial"]:
                raise CommandError("--fake-initial compares the live database: it cannot be used with --sql.",
                                   returncode=2)
            return self._write_sql(options)
        if options["phase"]:
            raise CommandError("--phase splits the script of --sql; online, migrate holds contract revisions "
                               "back itself while older code runs (docs/phases.md).", returncode=2)
        # Models that env.py imports during this migrate come from their files: the warning's kept answer holds
        # for them (inspection.models.drift_warning), where models loaded before may differ in memory.
        loaded_before = self._models_loaded()
        try:
            if options["check"] or options["plan"]:
                return self._preview(options)
            if options["prune"]:
                return self._prune(options)
            if options["fake_initial"]:
                self._fake_initial(options)
            self._migrate(options)
        except MigrationError as exc:
            raise CommandError(str(exc)) from None
        if options["verbosity"] >= 1 and options["target"] in {"head", "heads"}:
            self._warn_model_changes(loaded_from_files=not loaded_before)

    def _models_loaded(self) -> bool:
        """Whether the models TARGET_METADATA names are imported already, asked without importing
        project.core.inspection.models (and autogenerate) for it."""
        import sys

        from project.core.conf import import_path_module

        path = self.settings.get("TARGET_METADATA")
        return bool(path) and import_path_module(str(path)) in sys.modules

    def _warn_model_changes(self, *, loaded_from_files: bool = False) -> None:
        """Django's warning: the database is at head and the models have more (inspection.models.drift_warning)."""
        from project.core.inspection.models import drift_warning

        for line in drift_warning(self.settings, loaded_from_files=loaded_from_files):
            self.stdout.write(f"  {line}", self.style.NOTICE)

    def _migrate(self, options: dict[str, Any]) -> None:
        """migrator.migrate, the one sequence for every caller (through runner.at_head, which answers a migrate
        with nothing to apply without Alembic), with this command's output around it."""
        # runner.at_head: a migrate with nothing to apply answers without importing Alembic (migrator's).
        from project.core.runner import at_head

        verbosity = options["verbosity"]
        with ExitStack() as stack:
            stack.enter_context(_fewer_collections())
            progress: list[_Progress] = []

            def on_plan(plan: Any, _connection: Any) -> None:
                if verbosity >= 1:
                    self._operations(options["target"], plan.target, plan.current, pending=bool(plan.steps))
                if plan.steps and verbosity >= 1 and not options["fake"]:
                    progress.append(stack.enter_context(_Progress(self, plan)))

            def on_start(step: Any, elapsed: float) -> None:
                if progress:
                    progress[0].start(step, elapsed)

            def on_done(step: Any, elapsed: float) -> None:
                if progress:
                    progress[0].done(step, elapsed)
                elif verbosity >= 1:  # --fake: recorded, not run
                    self._faked(step, elapsed)

            def on_retry(step: Any, retry: int, delay: float) -> None:
                # project.core.runner.timeouts: the revision's lock was not granted in time and nothing of it was kept.
                if progress:
                    self.stdout.write(" " + self.style.WARNING(f"LOCK TIMEOUT, retry {retry} in {delay:g}s"))
                    progress[0].start(step, 0.0)

            def on_progress(step: Any, line: str) -> None:
                if progress:  # a backfill's progress (project.core.history.backfill)
                    progress[0].progress(step, line)

            held: list[Any] = []
            done = at_head.migrate(self.settings, options["target"], fake=options["fake"],
                                   allow_destructive=options["allow_destructive"],
                                   on_plan=on_plan, on_start=on_start, on_done=on_done, on_retry=on_retry,
                                   break_running_instances=options["break_running_instances"], on_held=held.append,
                                   on_progress=on_progress)
            if isinstance(done, at_head.AtHead) and verbosity >= 1:  # what on_plan prints of a plan with no steps
                self._operations(options["target"], done.target, done.current, pending=False)
        if held and verbosity >= 1:
            self._held(held[0])

    def _operations(self, requested: str, target: str | None, current: str | None, *, pending: bool) -> None:
        """The heading of a migrate: the database, the target (as asked, and resolved), where it is."""
        from project.core.db import migration_url
        from project.core.errors import mask_url

        self.stdout.write("Operations to perform:", self.style.HEADING)
        self.stdout.write(f"  Database: {mask_url(migration_url(self.settings))}")
        shown = target or "zero"
        if requested not in {shown, "zero", "base"}:
            shown = f"{requested} ({shown})"
        self.stdout.write(f"  Target: {shown}, currently at {current or 'zero'}")
        self.stdout.write("Running migrations:", self.style.HEADING)
        if not pending:
            self.stdout.write("  No migrations to apply.")

    def _held(self, held: Any) -> None:
        """The contract revisions migrate left for later, and the live instances they wait for."""
        waiting = ", ".join(step.revision for step in held.steps)
        self.stdout.write(f"Waiting: {waiting} (from contract revision {held.step}): live instances run code "
                          f"older than it: {held.describe()}. Run migrate again once they are gone (they leave "
                          "on shutdown, or age out after 3 missed heartbeats), or apply it now with "
                          "--break-running-instances, which breaks them.", self.style.WARNING)

    def _fake_initial(self, options: dict[str, Any]) -> None:
        from project.core.runner.adopt import fake_initial

        faked = fake_initial(self.settings)
        if faked and options["verbosity"] >= 1:
            self.stdout.write(f"  Faked {faked}: the database already has what it creates (compared as "
                              "`check --database` compares).")

    def _prune(self, options: dict[str, Any]) -> None:
        """Django's --prune: prune, then stop (nothing is migrated)."""
        from project.core.runner import migrator

        pruned = migrator.prune(self.settings)
        if options["verbosity"] >= 1:
            self.stdout.write("Pruning the applied log:", self.style.HEADING)
            for revision in pruned:
                self.stdout.write(f"  Pruning {revision}... " + self.style.SUCCESS("OK"))
            if not pruned:
                self.stdout.write("  No migrations to prune.")

    def _preview(self, options: dict[str, Any]) -> None:
        """--plan and --check only read: they answer at once, even while a migrate holds the lock."""
        from project.core.db import migration_url
        from project.core.errors import mask_url
        from project.core.runner import at_head

        if options["check"] and not options["plan"] and at_head.checked(self.settings, options["target"]):
            return  # at head, told without Alembic (runner.at_head): nothing unapplied
        from project.core.runner import migrator

        preview = migrator.preview(self.settings, options["target"], judged=options["plan"] and not options["check"])
        running = (f" A migrate is running on {mask_url(migration_url(self.settings))} right now; "
                   "this is what remained when asked.") if preview.running else ""
        if options["check"]:
            if preview.plan.steps:
                raise CommandError(f"{len(preview.plan.steps)} migration(s) unapplied: run `manage.py migrate`."
                                   + running)
            return
        held = self._waiting(preview.plan) if not options["break_running_instances"] else None
        self._print_plan(preview.plan, preview.dialect, preview.judged or [], held)
        if running:
            self.stdout.write(f"Note:{running}", self.style.WARNING)

    def _write_sql(self, options: dict[str, Any]) -> None:
        """migrate --sql: the script from project.core.offline, for the settings' engine (only its name is read)."""
        from project.core import offline

        try:
            text = offline.deploy_script(self.settings, options["target"], options["from_revision"],
                                         phase=options["phase"])
        except offline.OfflineError as exc:
            raise CommandError(str(exc)) from None
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8") as out:
                out.write(text)
            if options["verbosity"] >= 1:
                self.stdout.write(f"Wrote {options['output']}.")
        else:
            self.stdout.write(text, ending="")

    def _waiting(self, plan: Any) -> Any:
        """What the fleet holds back of `plan` now (project.core.runner.fleet), read on a connection of its own."""
        from project.core import db
        from project.core.history.phases import CONTRACT, declared_phase
        from project.core.history.scripts import alembic_config, script_directory
        from project.core.runner import fleet

        if not any(declared_phase(step.script) == CONTRACT for step in plan.steps):
            return None  # no contract revision: the fleet is not read
        @db.sync_entry
        def read() -> Any:
            with db.settings_connection(self.settings, db.migration_url(self.settings)) as connection:
                return fleet.waiting(connection, plan.script or script_directory(alembic_config(self.settings)),
                                     plan)

        return read()

    def _print_plan(self, plan: Any, dialect: str, judged: list[Any], held: Any = None) -> None:
        """Each step, with what it destroys on this database (DESTRUCTIVE: what CONFIRM_DESTRUCTIVE refuses),
        what it drops without losing anything here and why (NOTHING LOST), its lock marks, and whether it
        could be inspected at all: the policy's own judgement (docs/safety.md)."""
        from project.core.inspection import destructive, lock_rules

        self.stdout.write("Planned operations:", self.style.HEADING)
        if not plan.steps:
            self.stdout.write("  No planned migration operations.")
        silenced = set(self.settings.get("SILENCED_CHECKS", None) or [])
        for step, judgement in zip(plan.steps, judged, strict=True):
            verb = "Apply" if step.forwards else "Unapply"
            self.stdout.write(f"  {verb} {step}")
            verdict = judgement.verdict
            if judgement.destroys:
                self.stdout.write(f"  DESTRUCTIVE: {destructive.summary([f.text for f in judgement.destroys])}",
                                  self.style.WARNING)
            for finding, why in judgement.spared:
                self.stdout.write(f"  NOTHING LOST: {finding.text} ({why})", self.style.MUTED)
            for mark in lock_rules.plan_marks(step.script, dialect, step.forwards, silenced):
                self.stdout.write(f"  LOCKS: {mark}", self.style.WARNING)
            if verdict.uninspectable:
                empty = "" if judgement.uninspectable else "; the database holds no table, so nothing can be lost"
                self.stdout.write(f"  NOT INSPECTED: {verdict.uninspectable}{empty}", self.style.WARNING)
            if verdict.no_downgrade:
                self.stdout.write("  NO DOWNGRADE: its downgrade() raises NotImplementedError", self.style.ERROR)
            if held is not None and step is held.step:
                self.stdout.write(f"  WAITS: contract revision; live instances run code older than it: "
                                  f"{held.describe()}", self.style.WARNING)
            elif held is not None and step in held.steps:
                self.stdout.write(f"  WAITS: after {held.step.revision}", self.style.WARNING)

    def _faked(self, step: Any, _elapsed: float) -> None:
        verb = "Applying" if step.forwards else "Unapplying"
        self.stdout.write(f"  {verb} {step}... " + self.style.SUCCESS("FAKED"))


# The cycle collector's first generation is collected after this many allocations (net of frees) during a migrate;
# Python's default is 700. Most objects a migrate allocates are the libraries', the models' and the version files'
# as they are imported, which live until the process ends: at 700, a 300-revision migrate on PostgreSQL spent 60 to
# 130 ms of its 0.8-0.9 s of CPU in the collector (one or two full collections, depending on where the counts
# fell), at 10,000 about 35 ms and no full collection (issue 24; measured with gc.callbacks).
GC_THRESHOLD = 10_000


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """The cycle collector runs less often during a migrate (GC_THRESHOLD); as before afterwards (a migrate
    called in a long-lived process, a test's, leaves its collector as it found it)."""
    import gc

    before = gc.get_threshold()
    gc.set_threshold(max(before[0], GC_THRESHOLD), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


class _Progress:
    """What users see on long work: each revision as it finishes, with its time, then a summary line.

    On a terminal (and not in CI) a rich progress bar (count, current revision, elapsed time) stays
    below those lines; piped output gets the plain `  Applying <rev> <message>... OK (0.012s)` lines.
    """

    def __init__(self, command: BaseCommand, plan: Any):
        self.command = command
        self.total = len(plan.steps)
        self.forwards = plan.forwards
        self.slowest: tuple[Any, float] = (None, -1.0)
        self.started = time.perf_counter()
        self.bar: Any = None
        self.task: Any = None
        self.line_open = False  # "  Applying <rev>..." written, its "OK" not yet

    def __enter__(self) -> _Progress:
        out = self.command.stdout
        if out.isatty() and not os.environ.get("CI") and os.environ.get("TERM") != "dumb":
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            console = Console(file=out._out, no_color="NO_COLOR" in os.environ)
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), console=console, transient=True)
            self.task = self.bar.add_task("", total=self.total)
            self.bar.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()
        step, slowest = self.slowest
        if exc[0] is None and step is not None:
            verb = "Applied" if self.forwards else "Unapplied"
            self.command.stdout.write(
                f"{verb} {self.total} migration(s) in {time.perf_counter() - self.started:.2f}s; "
                f"slowest: {step} ({slowest:.3f}s)."
            )

    def start(self, step: Any, _elapsed: float) -> None:
        verb = "Applying" if step.forwards else "Unapplying"
        if self.bar is not None:
            self.bar.update(self.task, description=f"{verb} {step.revision}")
        else:
            self.command.stdout.write(f"  {verb} {step}...", ending="")
            self.line_open = True

    def progress(self, step: Any, line: str) -> None:
        """A line of a long step's own (a backfill's batches), under its "Applying" line."""
        if self.bar is not None:
            self.bar.console.print(f"    {line}", markup=False, highlight=False)
            return
        if self.line_open:
            self.command.stdout.write("")
            self.line_open = False
        self.command.stdout.write(f"    {line}")

    def done(self, step: Any, elapsed: float) -> None:
        if elapsed > self.slowest[1]:
            self.slowest = (step, elapsed)
        if self.bar is None:
            verb = "Applying" if step.forwards else "Unapplying"
            ok = " " + self.command.style.SUCCESS("OK") + f" ({elapsed:.3f}s)"
            self.command.stdout.write(ok if self.line_open else f"  {verb} {step}...{ok}")
            self.line_open = False
            return
        from rich.text import Text

        verb = "Applying" if step.forwards else "Unapplying"
        self.bar.console.print(Text.assemble(f"  {verb} {step}... ", ("OK", "green"), f" ({elapsed:.3f}s)"))
        self.bar.advance(self.task)
