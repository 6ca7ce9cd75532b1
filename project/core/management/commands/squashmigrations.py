from __future__ import annotations

from typing import Any

from project.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "Write one revision that replaces the range START..END (inclusive), as Django's squashmigrations.\n"
        "It goes to migrations/squashed/ with END's id: fresh databases run it, databases inside the range go on\n"
        "through the originals, plain Alembic keeps the originals. Data migrations are carried verbatim."
    )
    requires_settings = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("start", help="The first revision to squash (id or unique prefix).")
        parser.add_argument("end", help="The last revision to squash (id or unique prefix).")
        parser.add_argument("--no-data", action="store_true",
                            help="Refuse a range holding data migrations instead of carrying them.")

    def handle(self, *args: Any, **options: Any) -> None:
        from project.core.authoring.squash_writer import write_squash
        from project.core.errors import MigrationError, relative_path
        from project.core.management.commands.makemigrations import optional_settings

        settings = optional_settings(options.get("settings"))
        try:
            path = write_squash(settings, options["start"], options["end"], no_data=options["no_data"])
        except MigrationError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Squashed migration written: {relative_path(str(path))}", self.style.HEADING)
        self.stdout.write("  Keep the originals until every database has passed the range; then delete them and "
                          "move this file into versions/.")
