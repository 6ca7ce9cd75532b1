from __future__ import annotations

from typing import Any

from project.core.management.base import BaseCommand, CommandError, CommandParser

DIALECTS = ("sqlite", "mysql", "postgresql")


class Command(BaseCommand):
    help = (
        "Print the SQL of one migration (or a range A:B, e.g. base:head or head:base) without connecting to any "
        "database.\nThe dialect is the selected settings' unless --dialect names one (all: the three engines one "
        "after another).\nSQLite's table rebuilds are rendered exactly as online migrate runs them.\nA range that "
        "crosses a squash whole (base:head) shows the squash, as migrate runs it; one revision, a squash's END "
        "included, shows that version file's own SQL."
    )
    # Only the dialect's name is needed; with --dialect, not even the settings are.
    requires_settings = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "revision", help="A revision id or unique prefix, or a range A:B (base, head allowed; B before A: down)."
        )
        parser.add_argument("--backwards", action="store_true", help="The SQL to unapply the migration(s).")
        parser.add_argument("--dialect", choices=(*DIALECTS, "all"), help="Emit SQL for this engine (or all).")

    def handle(self, *args: Any, **options: Any) -> None:
        from project.core import offline
        from project.core.history.scripts import alembic_config, script_directory

        dialect = options["dialect"] or self._settings_dialect(options.get("settings"))
        settings = self._settings or self._optional_settings(options.get("settings"))
        script = script_directory(alembic_config(settings))
        try:
            rng = offline.parse_range(script, options["revision"], backwards=options["backwards"])
            names = offline.DIALECTS if dialect == "all" else (dialect,)
            sections = [(name, offline.render_review(offline.generate(name, rng, settings))) for name in names]
        except offline.OfflineError as exc:
            raise CommandError(str(exc)) from None
        text = sections[0][1] if dialect != "all" else offline.render_all(sections)
        self.stdout.write(text, ending="")

    def _settings_dialect(self, name: str | None) -> str:
        # Only the URL's dialect name is read: no connection, so a wrong password or host doesn't matter.
        from sqlalchemy import make_url

        from project.core.conf import load_settings

        self._settings = load_settings(name)
        return make_url(self._settings.DATABASE_URL).get_backend_name()

    def _optional_settings(self, name: str | None) -> Any:
        """With --dialect the settings are optional: they only choose the migrations directory."""
        from project.core.conf import ImproperlyConfigured, load_settings

        try:
            return load_settings(name)
        except ImproperlyConfigured:
            if name:
                raise
            return None
