from __future__ import annotations

from pathlib import Path
from typing import Any

from project.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "Write SQLAlchemy 2 models for the tables of the selected database (sqlacodegen), to stdout or --output.\n"
        "The first step of adopting an existing database: see docs/adopt.md."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("table", nargs="*", help="Only these tables (default: all but the tool's own).")
        parser.add_argument("-o", "--output", metavar="FILE", help="Write the models to FILE instead of stdout.")
        parser.add_argument("--force", action="store_true", help="With --output: overwrite an existing FILE.")

    def handle(self, *args: Any, **options: Any) -> None:
        from project.core.db import migration_url
        from project.core.errors import mask_url
        from project.core.inspection.inspectdb import models_source

        output = Path(options["output"]) if options["output"] else None
        if output is not None and output.exists() and not options["force"]:
            raise CommandError(f"{output} already exists: choose another --output, or add --force to overwrite it.")
        if output is not None and not output.parent.is_dir():
            raise CommandError(f"Cannot write {output}: the folder {output.parent} does not exist; create it first.")
        source, tables = models_source(self.settings, options["table"] or None)
        if output is None:
            self.stdout.write(source, ending="")
            return
        output.write_text(source, encoding="utf-8")
        if options["verbosity"] >= 1:
            self.stdout.write(f"Wrote models for {len(tables)} table(s) of "
                              f"{mask_url(migration_url(self.settings))} to {output}.")
