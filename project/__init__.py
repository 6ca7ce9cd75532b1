"""Django's manage.py experience for a FastAPI + SQLAlchemy 2 application, on top of Alembic.

Imports here stay lazy: `python manage.py help` must not pull in SQLAlchemy, Alembic or FastAPI.
"""

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def migrate_database(settings: Any = None, target: str = "head", **kwargs: Any) -> Any:
    """Bring the database of `settings` (default: $SETTINGS_MODULE's) to `target`, under the migration lock.

    The one code path behind `manage.py migrate`, the app's start-up migrations and the tests;
    safe to call from many processes at once. Returns the migrator.Plan that was carried out
    (empty steps when there was nothing to do). Raises migrator.MigrationError on a bad target
    or when another migrate holds the lock for longer than MIGRATE_LOCK_TIMEOUT.
    """
    # Imported here so that `import project` (and `manage.py help`) stays free of SQLAlchemy.
    from project import migrator
    from project.conf import load_settings

    return migrator.migrate(settings if settings is not None else load_settings(), target, **kwargs)
