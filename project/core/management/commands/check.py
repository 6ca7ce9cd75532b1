from __future__ import annotations

from collections.abc import Callable
from typing import Any

from project.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "Inspect the project for problems, one line each (file:line where there is one); exit 1 if any.\n"
        "Always: the migration graph, models vs migrations, portability of the version files.\n"
        "--database: also the live database against the schema of its recorded revision.\n"
        "--deploy: also production settings (default: prod) and passwords in committed files.\n"
        "--locks: only the graph and the lock/rewrite lint (plain `check` shows that lint as warnings)."
    )
    # --deploy reports unloadable prod settings as a problem instead of failing on them.
    requires_settings = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", action="store_true", help="Compare the live database with its revision.")
        parser.add_argument("--deploy", action="store_true", help="Check production settings and committed files.")
        parser.add_argument("--locks", action="store_true",
                            help="Only the steps that lock or rewrite a table, per engine (inspection.lock_rules).")

    def handle(self, *args: Any, **options: Any) -> None:
        from project.core.inspection.database import database_problems
        from project.core.inspection.deploy import deploy_problems
        from project.core.inspection.graph import graph_problems
        from project.core.inspection.models import model_problems
        from project.core.inspection.portability import portability_problems
        from project.core.inspection.problem import Problem
        from project.core.inspection.version_files import read_version_files, versions_dir

        settings = self._load_settings(options["settings"], options["deploy"])
        files = read_version_files(versions_dir(settings))
        problems = graph_problems(files)
        # A broken graph cannot be replayed: models vs migrations must wait for it (lint problems need not).
        replayable = not problems
        silenced = set(settings.get("SILENCED_CHECKS", None) or []) if settings is not None else set()
        if options["locks"]:
            problems += self._locks(settings) if replayable else []
        else:
            problems += portability_problems(files, silenced)
            if settings is not None:
                from project.core.history import squash  # docs/history.md, "Squashing a history"

                defined = {f.revision: f.path for f in files if f.revision}
                problems += [Problem(p) for p in squash.problems(versions_dir(settings).parent,
                                                                         defined)]
            if replayable:
                problems += self._guarded("models", lambda: model_problems(settings), settings)
                problems += self._locks(settings, every=False)  # after LOCK_LINT_AFTER only (docs/safety.md)
                problems += self._guarded("phases", lambda: self._phases(settings, silenced), settings)
        if options["database"]:
            if settings is None:
                raise CommandError("--database needs settings that load; see the deploy problems above.")
            problems += self._guarded("database", lambda: database_problems(settings), settings)
        if options["deploy"]:
            problems += deploy_problems(options["settings"] or "prod")
        for problem in problems:
            self.stdout.write(str(problem), self.style.WARNING if problem.level == "warning" else self.style.ERROR)
        errors = [p for p in problems if p.level != "warning"]
        count = f"{len(problems)} issue{'s' if len(problems) != 1 else ''}"
        if errors:
            raise CommandError(f"System check identified {count}.")
        if problems:  # warnings only, as Django: shown, not failing
            self.stdout.write(f"System check identified {count} (warnings only).", self.style.WARNING)
            return
        self.stdout.write("System check identified no issues.", self.style.SUCCESS)

    def _load_settings(self, name: str | None, deploy: bool) -> Any:
        from project.core.conf import ImproperlyConfigured, load_settings

        try:
            self._settings = load_settings(name or ("prod" if deploy else None))
        except ImproperlyConfigured:
            if not deploy:
                raise
            self._settings = None
        return self._settings

    def _phases(self, settings: Any, silenced: set[str]) -> list[Any]:
        """Revisions whose declared phase their operations contradict (docs/phases.md)."""
        from project.core.history.scripts import alembic_config, script_directory
        from project.core.inspection.phases import phase_problems

        return phase_problems(script_directory(alembic_config(settings)), silenced)

    def _locks(self, settings: Any, every: bool = True) -> list[Any]:
        """Steps that lock or rewrite a table, per engine: warnings, never a failure."""
        from project.core.inspection import lock_rules

        return self._guarded("locks", lambda: lock_rules.lock_problems(settings, every=every), settings)

    def _guarded(self, what: str, check: Callable[[], list[Any]], settings: Any) -> list[Any]:
        """Run one check; its failure (a revision that raises, a database that refuses) is one problem."""
        from project.core.errors import describe
        from project.core.inspection.problem import Problem

        try:
            return check()
        except Exception as exc:
            if isinstance(exc, CommandError):
                raise
            message, _ = describe(exc, settings)
            return [Problem(f"{what}: could not be checked: {message}")]
