from __future__ import annotations

import os
import time
from contextlib import nullcontext
from typing import Any

from project.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "Bring the database to a revision: head (default), zero, or an id or unique prefix.\n"
        "A target behind the current revision unapplies the revisions after it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("target", nargs="?", default="head", help="head (default), zero, or a revision id/prefix.")
        parser.add_argument("--plan", action="store_true", help="Show what would run; change nothing.")
        parser.add_argument("--fake", action="store_true", help="Record the target revision without running SQL.")
        parser.add_argument("--check", action="store_true", help="Exit 1 when migrations are unapplied.")
        parser.add_argument("--allow-destructive", action="store_true",
                            help="Run steps that drop or narrow data even when CONFIRM_DESTRUCTIVE is on.")
        parser.add_argument("--sql", action="store_true",
                            help="Write the deploy SQL script instead of migrating; never connects. The database's "
                                 "revision is unknown offline: TARGET may be a range A:B, else --from (default base).")
        parser.add_argument("--from", dest="from_revision", default="base", metavar="REV",
                            help="With --sql: the revision the database is at (default base).")
        parser.add_argument("-o", "--output", metavar="FILE", help="With --sql: write the script to FILE.")

    def handle(self, *args: Any, **options: Any) -> None:
        from project import migrator
        from project.errors import mask_url

        if options["sql"]:
            return self._write_sql(options)
        verbosity = options["verbosity"]
        script = migrator.script_directory(migrator.alembic_config(self.settings))
        try:
            with migrator.locked_connection(self.settings) as connection:
                plan = migrator.make_plan(script, migrator.current_heads(connection), options["target"])
                if options["check"]:
                    if plan.steps:
                        raise CommandError(f"{len(plan.steps)} migration(s) unapplied: run `manage.py migrate`.")
                    return
                if options["plan"]:
                    self._print_plan(plan, connection.dialect.name)
                    return
                if not options["fake"] and not options["allow_destructive"]:
                    self._refuse_destructive(plan, connection.dialect.name)
                if verbosity >= 1:
                    self.stdout.write("Operations to perform:", self.style.HEADING)
                    self.stdout.write(f"  Database: {mask_url(self.settings.DATABASE_URL)}")
                    target = plan.target or "zero"
                    if options["target"] not in {target, "zero", "base"}:
                        target = f"{options['target']} ({target})"
                    self.stdout.write(f"  Target: {target}, currently at {plan.current or 'zero'}")
                    self.stdout.write("Running migrations:", self.style.HEADING)
                if not plan.steps:
                    if verbosity >= 1:
                        self.stdout.write("  No migrations to apply.")
                    return
                progress = _Progress(self, plan) if verbosity >= 1 and not options["fake"] else None
                with progress or nullcontext():
                    migrator.run_plan(
                        self.settings, connection, plan, fake=options["fake"], script=script,
                        on_start=progress.start if progress else None,
                        # No progress means --fake (recorded, not run) or -v0.
                        on_done=progress.done if progress else self._faked if verbosity >= 1 else None,
                    )
        except migrator.MigrationError as exc:
            raise CommandError(str(exc)) from None

    def _write_sql(self, options: dict[str, Any]) -> None:
        """migrate --sql: the script from project.offline, for the settings' engine (only its name is read)."""
        from project import offline

        try:
            text = offline.deploy_script(self.settings, options["target"], options["from_revision"])
        except offline.OfflineError as exc:
            raise CommandError(str(exc)) from None
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8") as out:
                out.write(text)
            if options["verbosity"] >= 1:
                self.stdout.write(f"Wrote {options['output']}.")
        else:
            self.stdout.write(text, ending="")

    def _print_plan(self, plan: Any, dialect: str) -> None:
        from project import safety

        self.stdout.write("Planned operations:", self.style.HEADING)
        if not plan.steps:
            self.stdout.write("  No planned migration operations.")
        for step in plan.steps:
            verb = "Apply" if step.forwards else "Unapply"
            self.stdout.write(f"  {verb} {step}")
            findings = safety.classify_revision(step.script, step.forwards, dialect)
            if findings:
                self.stdout.write(f"  DESTRUCTIVE: {safety.summary(findings)}", self.style.WARNING)

    def _refuse_destructive(self, plan: Any, dialect: str) -> None:
        """CONFIRM_DESTRUCTIVE: refuse, before anything runs, a plan with a step that destroys data."""
        from project import safety

        if not self.settings.get("CONFIRM_DESTRUCTIVE", False):
            return
        destructive = safety.classify_plan(plan, dialect)
        if destructive:
            steps = "; ".join(
                f"{'apply' if s.forwards else 'unapply'} {s.revision} {safety.summary(f)}" for s, f in destructive
            )
            raise CommandError(
                f"Refusing to run destructive steps (CONFIRM_DESTRUCTIVE is on): {steps}. "
                "Review them with `manage.py migrate --plan`, then re-run with --allow-destructive."
            )

    def _faked(self, step: Any, _elapsed: float) -> None:
        verb = "Applying" if step.forwards else "Unapplying"
        self.stdout.write(f"  {verb} {step}... " + self.style.SUCCESS("FAKED"))


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

    def done(self, step: Any, elapsed: float) -> None:
        if elapsed > self.slowest[1]:
            self.slowest = (step, elapsed)
        if self.bar is None:
            self.command.stdout.write(" " + self.command.style.SUCCESS("OK") + f" ({elapsed:.3f}s)")
            return
        from rich.text import Text

        verb = "Applying" if step.forwards else "Unapplying"
        self.bar.console.print(Text.assemble(f"  {verb} {step}... ", ("OK", "green"), f" ({elapsed:.3f}s)"))
        self.bar.advance(self.task)
