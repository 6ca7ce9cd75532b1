"""SQLite by default; DEV_DATABASE_URL points it at any engine (the tests' db_url)."""

from fixture_app.settings.base import *  # noqa: F403
from fixture_app.settings.base import BASE_DIR
from project.core.conf import env, env_bool

DEBUG = True
DATABASE_URL = env("DEV_DATABASE_URL", f"sqlite:///{BASE_DIR / 'dev.sqlite3'}")
MIGRATION_DATABASE_URL = env("DEV_MIGRATION_DATABASE_URL")
MIGRATE_ON_STARTUP = env_bool("MIGRATE_ON_STARTUP", True)
CONFIRM_DESTRUCTIVE = env_bool("CONFIRM_DESTRUCTIVE", False)
# An applied revision edited since: warn once and go on (test and prod stop: "error").
CHECKSUM_MISMATCH = env("CHECKSUM_MISMATCH", "warn")
