"""The rolling application's base settings. Each run writes a module of its own per release that imports these
and names the release, its copy of the history and the database (deploy.Release), so that nothing is read from
the environment of the process that loads it."""

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]  # alembic.ini and .cache/ are the project's
RELEASE = 2
MIGRATIONS_DIR = str(Path(__file__).resolve().parent / "migrations")
DATABASE_URL = ""
MIGRATION_DATABASE_URL = None
COMMAND_PACKAGES: list[str] = []
MIGRATE_ON_STARTUP = False
CHECKSUM_MISMATCH = "warn"
FLEET_HEARTBEAT = 30.0
# The drop waits for the requests in flight (their row locks, SQLite's write lock), as in production.
MIGRATE_DDL_LOCK_TIMEOUT = 30.0
MIGRATE_LOCK_RETRIES = 1
