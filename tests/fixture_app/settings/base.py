"""What every environment of the fixture application shares."""

from pathlib import Path

from project.core.conf import env, env_bool, env_float

# The project root: alembic.ini (and .cache/) are the project's own.
BASE_DIR = Path(__file__).resolve().parents[3]
MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"
TARGET_METADATA = "fixture_app.models:Base.metadata"
# runserver and start-up migrations serve the project's application factory with these settings.
ASGI_APPLICATION = "project.app.asgi:app"
COMMAND_PACKAGES: list[str] = []

DEBUG = False
# A direct connection for migrations when DATABASE_URL goes through a pooler; each environment reads it
# from <ENV>_MIGRATION_DATABASE_URL, as the project's settings do.
MIGRATION_DATABASE_URL: str | None = None
SQL_ECHO = env_bool("SQL_ECHO", False)
MIGRATE_ON_STARTUP = False
# Seconds a start-up migration waits for a database that is away; 0: fail at once.
MIGRATE_ON_STARTUP_WAIT = env_float("MIGRATE_ON_STARTUP_WAIT", 60.0)
MIGRATE_LOCK_TIMEOUT = float(env("MIGRATE_LOCK_TIMEOUT", "300"))
# The migration lock: "auto" (the engine's own; a lease row on Galera) or "lease" (the lease row on any server).
MIGRATE_LOCK = env("MIGRATE_LOCK", "auto")
# The lease row only: how long it stays taken once its holder stops renewing it.
MIGRATE_LOCK_LEASE = env_float("MIGRATE_LOCK_LEASE", 60.0)

# Per statement of every revision migrate runs (project.core.runner.timeouts): how long DDL waits for a table's lock
# (not the migration lock above), a statement's time limit (0: none), and the retries of a revision whose lock
# was not granted, after MIGRATE_LOCK_RETRY_DELAY seconds, doubled each time.
MIGRATE_DDL_LOCK_TIMEOUT = env_float("MIGRATE_DDL_LOCK_TIMEOUT", 5.0)
MIGRATE_STATEMENT_TIMEOUT = env_float("MIGRATE_STATEMENT_TIMEOUT", 0.0)
MIGRATE_LOCK_RETRIES = int(env_float("MIGRATE_LOCK_RETRIES", 3))
MIGRATE_LOCK_RETRY_DELAY = env_float("MIGRATE_LOCK_RETRY_DELAY", 2.0)
CONFIRM_DESTRUCTIVE = False
