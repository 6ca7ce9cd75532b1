from __future__ import annotations

from typing import Any

from project.management.base import BaseCommand, CommandError, CommandParser

DIALECTS = ("sqlite", "mysql", "postgresql")


class Command(BaseCommand):
    help = (
        "Print the SQL of one migration (or a range A:B, e.g. base:head) without connecting to any database.\n"
        "The dialect is the selected settings' unless --dialect names one."
    )
    # Only the dialect's name is needed; with --dialect, not even the settings are.
    requires_settings = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("revision", help="A revision id or unique prefix, or a range A:B (base, head allowed).")
        parser.add_argument("--backwards", action="store_true", help="The SQL to unapply the migration.")
        parser.add_argument("--dialect", choices=DIALECTS, help="Emit SQL for this engine instead.")

    def handle(self, *args: Any, **options: Any) -> None:
        from alembic import command

        from project import migrator

        dialect = options["dialect"] or self._settings_dialect(options.get("settings"))
        cfg = migrator.alembic_config(self._settings, dialect_name=dialect, output_buffer=self.stdout)
        script = migrator.script_directory(cfg)
        start, end = self._range(script, options["revision"], options["backwards"])
        try:
            if options["backwards"]:
                command.downgrade(cfg, f"{start}:{end}", sql=True)
            else:
                command.upgrade(cfg, f"{start}:{end}", sql=True)
        except Exception as exc:
            if "cannot proceed in --sql mode" in str(exc):
                raise CommandError(
                    "This migration rebuilds a SQLite table (batch mode), which Alembic cannot render offline yet; "
                    "use --dialect postgresql or mysql to review it."
                ) from None
            raise

    def _settings_dialect(self, name: str | None) -> str:
        from sqlalchemy import make_url

        from project.conf import load_settings

        self._settings = load_settings(name)
        return make_url(self._settings.DATABASE_URL).get_backend_name()

    def _range(self, script: Any, spec: str, backwards: bool) -> tuple[str, str]:
        """(from, to) as Alembic's --sql takes it: one revision means from its parent to itself."""
        from project import migrator

        def resolve(token: str) -> str:
            try:
                return migrator.resolve_revision(script, token) or "base"
            except migrator.MigrationError as exc:
                raise CommandError(str(exc)) from None

        if ":" in spec:
            start, end = spec.split(":", 1)
            return resolve(start), resolve(end)
        revision = resolve(spec)
        if revision == "base":
            raise CommandError("Name a revision (or a range A:B); 'base' holds no migration.", 2)
        parents = script.get_revision(revision)._versioned_down_revisions
        parent = parents[0] if len(parents) == 1 else "base"
        if len(parents) > 1:
            raise CommandError(f"{revision} merges {', '.join(parents)}: give a range instead, e.g. base:{revision}.")
        return (revision, parent) if backwards else (parent, revision)
