from __future__ import annotations

from typing import Any

from project.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "List every revision in apply order, [X] when applied to the selected database."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--plan", "-p", action="store_true", help="Show the revisions as a plan, with parents.")

    def handle(self, *args: Any, **options: Any) -> None:
        from project.core import migrator

        script = migrator.script_directory(migrator.alembic_config(self.settings))
        heads, dialect = migrator.database_heads(self.settings)
        applied: set[str] = set()
        for head in heads:
            applied.update(s.revision for s in script.iterate_revisions(head, "base"))
        revisions = list(reversed(list(script.walk_revisions())))
        if not options["plan"]:
            self.stdout.write("migrations", self.style.HEADING)
        if not revisions:
            self.stdout.write(" (no migrations)")
        for rev in revisions:
            mark = "X" if rev.revision in applied else " "
            title = (rev.doc or "").strip().splitlines()[0] if rev.doc else ""
            if options["plan"]:
                parents = ", ".join(rev._versioned_down_revisions)
                suffix = f" ... (parent: {parents})" if parents and options["verbosity"] >= 2 else ""
                self.stdout.write(f"[{mark}]  {rev.revision} {title}{suffix}")
                if rev.revision not in applied:
                    self._mark_destructive(rev, dialect)
            else:
                self.stdout.write(f" [{mark}] {rev.revision} {title}")

    def _mark_destructive(self, rev: Any, dialect: str) -> None:
        """A pending revision that destroys data when applied says what it drops."""
        from project.core import safety

        findings = safety.classify_revision(rev, True, dialect)
        if findings:
            self.stdout.write(f"      DESTRUCTIVE: {safety.summary(findings)}", self.style.WARNING)
