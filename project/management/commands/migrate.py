from __future__ import annotations

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

    def handle(self, *args: Any, **options: Any) -> None:
        from project import migrator
        from project.errors import mask_url

        verbosity = options["verbosity"]
        script = migrator.script_directory()
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
                    self.stdout.write(f"  Target: {target} (currently at {plan.current or 'zero'})")
                    self.stdout.write("Running migrations:", self.style.HEADING)
                if not plan.steps:
                    if verbosity >= 1:
                        self.stdout.write("  No migrations to apply.")
                    return
                migrator.run_plan(
                    self.settings, connection, plan, fake=options["fake"],
                    on_start=self._on_start if verbosity >= 1 and not options["fake"] else None,
                    on_done=self._on_done(options["fake"]) if verbosity >= 1 else None,
                )
        except migrator.MigrationError as exc:
            raise CommandError(str(exc)) from None

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

    def _on_start(self, step: Any, _elapsed: float) -> None:
        verb = "Applying" if step.forwards else "Unapplying"
        self.stdout.write(f"  {verb} {step}...", ending="")

    def _on_done(self, fake: bool) -> Any:
        def done(step: Any, elapsed: float) -> None:
            if fake:
                verb = "Applying" if step.forwards else "Unapplying"
                self.stdout.write(f"  {verb} {step}... " + self.style.SUCCESS("FAKED"))
            else:
                self.stdout.write(" " + self.style.SUCCESS("OK") + f" ({elapsed:.3f}s)")

        return done
