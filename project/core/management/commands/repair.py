from __future__ import annotations

from typing import Any

from project.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    stops_on_sigterm = True
    help = (
        "After review, make the applied log agree again: record the current checksum of each edited applied\n"
        "revision, and clear a failed revision once the database was fixed by hand (it is compared with what\n"
        "the history builds; what differs is said instead). Without REV: every revision that needs it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("revisions", nargs="*", metavar="REV", help="Revision ids or unique prefixes.")

    def handle(self, *args: Any, **options: Any) -> None:
        from project.core.errors import MigrationError
        from project.core.runner.repair import repair

        try:
            outcome = repair(self.settings, options["revisions"])
        except MigrationError as exc:
            raise CommandError(str(exc)) from None
        if options["verbosity"] >= 1:
            for line in outcome.done or ["Nothing to repair."]:
                self.stdout.write(line)
