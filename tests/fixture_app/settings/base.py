"""What every environment of the fixture application shares."""

from pathlib import Path

from project.core.conf import env, env_bool

# The project root: alembic.ini (and .cache/) are the project's own.
BASE_DIR = Path(__file__).resolve().parents[3]
MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"
TARGET_METADATA = "fixture_app.models:Base.metadata"
# runserver and start-up migrations serve the project's application factory with these settings.
ASGI_APPLICATION = "project.app.asgi:app"
COMMAND_PACKAGES: list[str] = []

DEBUG = False
SQL_ECHO = env_bool("SQL_ECHO", False)
MIGRATE_ON_STARTUP = False
MIGRATE_LOCK_TIMEOUT = float(env("MIGRATE_LOCK_TIMEOUT", "300"))
CONFIRM_DESTRUCTIVE = False
