"""A Django-style management layer for FastAPI + SQLAlchemy 2 on top of Alembic, with a demo app.

- `project.core`: the reusable tool (settings loader, commands, migration runner, locks, offline SQL,
  safety, checks, health). It never imports the application: settings name what it needs.
- `project.app`: the demo application (users and posts). Replace it with your own.

Imports here stay lazy: `python manage.py help` must not pull in SQLAlchemy, Alembic or FastAPI.
"""

from typing import Any


def migrate_database(settings: Any = None, target: str = "head", **kwargs: Any) -> Any:
    """Bring the database of `settings` (default: $SETTINGS_MODULE's) to `target`: `manage.py migrate` in code.

    The same sequence as the command and start-up migrations (project.core.runner.migrator.migrate): lock, plan,
    destructive-step policy, run. Returns the Plan carried out (no steps when there was nothing to do).
    """
    from project.core.conf import load_settings
    from project.core.runner import migrator

    return migrator.migrate(settings if settings is not None else load_settings(), target, **kwargs)
