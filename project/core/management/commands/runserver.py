from __future__ import annotations

import os
import re
from typing import Any

from project.core.management.base import BaseCommand, CommandError, CommandParser

DEFAULT_ADDR = "127.0.0.1"
DEFAULT_PORT = 8000


class Command(BaseCommand):
    help = (
        "Serve the application with uvicorn, on 127.0.0.1:8000 unless told otherwise.\n"
        "Reloads on code changes when DEBUG is on (dev) unless --noreload. For production, run\n"
        "`uvicorn <ASGI_APPLICATION> --workers N` with SETTINGS_MODULE set, or --workers N here."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("addrport", nargs="?", help="Port, or addr:port (default 127.0.0.1:8000).")
        reload = parser.add_mutually_exclusive_group()
        reload.add_argument("--reload", dest="reload", action="store_true", default=None,
                            help="Restart on code changes (default when DEBUG is on).")
        reload.add_argument("--noreload", dest="reload", action="store_false",
                            help="Do not restart on code changes.")
        parser.add_argument("--workers", type=int, default=1, help="Worker processes (default 1; not with --reload).")

    def handle(self, *args: Any, **options: Any) -> None:
        from project.core.conf import ENVIRONMENT_VARIABLE

        addr, port = parse_addrport(options["addrport"])
        workers = options["workers"]
        if workers < 1:
            raise CommandError(f"--workers must be at least 1, not {workers}.", returncode=2)
        reload = options["reload"]
        if reload and workers > 1:
            raise CommandError("--reload and --workers N>1 cannot be combined: pick one.", returncode=2)
        if reload is None:
            reload = bool(self.settings.get("DEBUG", False)) and workers == 1
        # The reloader's and the workers' processes load the settings from the environment.
        os.environ[ENVIRONMENT_VARIABLE] = self.settings.module_name

        app = asgi_application(self.settings)
        self._print_banner(addr, port, reload, workers)
        import uvicorn

        from project.core.conf import base_dir

        uvicorn.run(
            app, host=addr, port=port, workers=workers, reload=reload,
            reload_dirs=[str(base_dir(self.settings))] if reload else None, log_level="info",
        )

    def _print_banner(self, addr: str, port: int, reload: bool, workers: int) -> None:
        from project.core.errors import mask_url

        settings = self.settings
        self.stdout.write(f"Settings: {settings.module_name}")
        self.stdout.write(f"Database: {mask_url(settings.DATABASE_URL)}")
        self._print_migration_status()
        self._print_model_changes()
        host = f"[{addr}]" if ":" in addr else addr
        mode = "reload on" if reload else "reload off"
        self.stdout.write(f"Starting server at http://{host}:{port}/ ({mode}, {workers} worker(s))")
        self.stdout.write("Quit the server with CONTROL-C.")

    def _print_migration_status(self) -> None:
        """Django's unapplied-migrations warning; start-up migrations make it a note instead."""
        from project.core.errors import describe
        from project.core.history.plan import make_plan
        from project.core.history.scripts import alembic_config, script_directory
        from project.core.runner import migrator

        try:
            heads, _dialect = migrator.database_heads(self.settings)
            plan = make_plan(script_directory(alembic_config(self.settings)), heads, "heads")
        except Exception as exc:
            # Like Django: say so once and serve anyway; /health/ready reports the rest.
            message = describe(exc, self.settings)[0]
            self.stdout.write(f"Warning: could not check for unapplied migrations: {message}", self.style.WARNING)
            return
        count = len(plan.steps)
        if not count:
            return
        if self.settings.get("MIGRATE_ON_STARTUP", False):
            self.stdout.write(f"{count} unapplied migration(s) will be applied at start-up (MIGRATE_ON_STARTUP).")
            return
        self.stdout.write("")
        self.stdout.write(
            f"You have {count} unapplied migration(s). Your project may not work properly until you apply them.",
            self.style.NOTICE,
        )
        self.stdout.write("Run 'python manage.py migrate' to apply them.", self.style.NOTICE)
        self.stdout.write("")


    def _print_model_changes(self) -> None:
        """As migrate does: models with changes no migration covers (the routes on them would answer 500)."""
        from project.core.inspection.models import drift_warning

        for line in drift_warning(self.settings):
            self.stdout.write(line, self.style.NOTICE)


def asgi_application(settings: Any) -> str:
    """ASGI_APPLICATION as uvicorn's "module:attribute". uvicorn imports it by name, so its reloader
    and worker processes each build their own app; the tool itself never imports it."""
    value = settings.get("ASGI_APPLICATION")
    if not value:
        raise CommandError("ASGI_APPLICATION is not set: name the app in your settings, "
                           'e.g. ASGI_APPLICATION = "myapp.asgi:app".', returncode=2)
    module, sep, attr = value.partition(":")
    if not sep:
        module, _, attr = value.rpartition(".")
    if not module or not attr:
        raise CommandError(f"ASGI_APPLICATION = {value!r} is not 'package.module:app'.", returncode=2)
    return f"{module}:{attr}"


def parse_addrport(value: str | None) -> tuple[str, int]:
    """'8000', '0.0.0.0:8000', 'localhost:8000', '[::1]:8000' -> (address, port)."""
    if not value:
        return DEFAULT_ADDR, DEFAULT_PORT
    match = re.fullmatch(r"(?:(?:\[(?P<ipv6>[0-9a-fA-F:.]+)\]|(?P<host>[A-Za-z0-9.\-]+)):)?(?P<port>\d+)", value)
    port = int(match["port"]) if match else 0
    if not match or not 0 < port < 65536:
        raise CommandError(f"'{value}' is not a valid port number or address:port pair.", returncode=2)
    return match["ipv6"] or match["host"] or DEFAULT_ADDR, port
