"""Development: a SQLite file at the project root, found by absolute path from any directory."""

from project.core.conf import env, env_bool, env_float
from settings.base import *  # noqa: F403
from settings.base import BASE_DIR

DEBUG = True
DATABASE_URL = env("DEV_DATABASE_URL", f"sqlite:///{BASE_DIR / 'dev.sqlite3'}")
MIGRATION_DATABASE_URL = env("DEV_MIGRATION_DATABASE_URL")
MIGRATE_ON_STARTUP = env_bool("MIGRATE_ON_STARTUP", True)
CONFIRM_DESTRUCTIVE = env_bool("CONFIRM_DESTRUCTIVE", False)
# An applied revision edited since: warn once and go on (test and prod stop: "error").
CHECKSUM_MISMATCH = env("CHECKSUM_MISMATCH", "warn")
# SQLite in dev: DDL waits for the app's writers as long as they wait for each other (the 30 s busy timeout of
# project.core.db); nobody queues behind a developer's migrate, so waiting beats failing. One retry.
MIGRATE_DDL_LOCK_TIMEOUT = env_float("MIGRATE_DDL_LOCK_TIMEOUT", 30.0)
MIGRATE_LOCK_RETRIES = int(env_float("MIGRATE_LOCK_RETRIES", 1))
