"""`manage.py shell`: an interactive Python shell with the settings, an engine and a session ready.

An application-level command: it lives with the app and is found through COMMAND_PACKAGES, the way
an app adds its own commands without touching the tool.
"""

from __future__ import annotations

from typing import Any

from project.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = (
        "Start an interactive Python shell with `settings`, `engine`, `session` and the models ready.\n"
        "IPython when it is installed, else Python's own. -c runs one piece of code and exits."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("-c", "--command", help="Run this code instead of starting a shell.")
        parser.add_argument("-i", "--interface", choices=["ipython", "python"],
                            help="Which shell (default: IPython when installed).")

    def handle(self, *args: Any, **options: Any) -> None:
        from project.core import db

        if db.is_async_url(self.settings.DATABASE_URL):
            # `engine` and `session` are sync objects over the async driver: usable inside SQLAlchemy's
            # greenlet, which sync_entry provides for the whole session.
            db.sync_entry(self._handle)(**options)
        else:
            self._handle(**options)

    def _handle(self, **options: Any) -> None:
        namespace = self.namespace()
        try:
            if options["command"]:
                exec(options["command"], namespace)
                return
            self.interact(namespace, options["interface"], options["verbosity"])
        finally:
            namespace["session"].close()
            namespace["engine"].dispose()

    def namespace(self) -> dict[str, Any]:
        import sqlalchemy as sa

        from project.app import models
        from project.core.db import engine_from_settings, session_factory

        engine = engine_from_settings(self.settings)
        names: dict[str, Any] = {"settings": self.settings, "engine": engine, "sa": sa,
                                 "session": session_factory(engine)(), "models": models}
        # Base and every mapped class, whatever the models are (the demo's, or yours once it is gone).
        names["Base"] = models.Base
        names.update({mapper.class_.__name__: mapper.class_ for mapper in models.Base.registry.mappers})
        return names

    def interact(self, namespace: dict[str, Any], interface: str | None, verbosity: int) -> None:
        from project.core.errors import mask_url

        banner = (f"Settings: {self.settings.module_name}; database: {mask_url(self.settings.DATABASE_URL)}\n"
                  f"Ready: {', '.join(sorted(n for n in namespace if not n.startswith('_')))}")
        if interface != "python":
            try:
                from IPython import start_ipython
            except ImportError:
                if interface == "ipython":
                    from project.core.management.base import CommandError

                    raise CommandError("IPython is not installed: pip install ipython, or use -i python.") from None
            else:
                if verbosity >= 1:
                    self.stdout.write(banner)
                start_ipython(argv=[], user_ns=namespace)
                return
        import code

        code.interact(banner=banner if verbosity >= 1 else "", local=namespace, exitmsg="")
