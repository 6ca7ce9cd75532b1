"""Settings shared by every environment. Environment modules import * from here and override."""

from pathlib import Path

from project.core.conf import env, env_bool, env_float

# The project root: alembic.ini, migrations/, .env and .cache/ live here.
BASE_DIR = Path(__file__).resolve().parent.parent

# Alembic's script location (env.py and versions/).
MIGRATIONS_DIR = BASE_DIR / "migrations"

# What the tool needs from the application, by dotted path (imported only by the commands that use it):
# the MetaData that makemigrations and check compare the history with,
TARGET_METADATA = "project.app.models:Base.metadata"
# the ASGI application that runserver serves,
ASGI_APPLICATION = "project.app.asgi:app"
# and packages of extra management commands (one module per command, as project/core/management/commands).
COMMAND_PACKAGES = ["project.app.management.commands"]

DEBUG = False

# The SQLAlchemy URL of the database this environment migrates; each environment module sets it.
DATABASE_URL: str

# A direct connection for migrations (migrate, start-up migrations, migrate_database) when DATABASE_URL
# goes through a transaction-mode pooler such as PgBouncer; None: migrations use DATABASE_URL.
# Each environment reads it from <ENV>_MIGRATION_DATABASE_URL.
MIGRATION_DATABASE_URL: str | None = None

# Echo every SQL statement SQLAlchemy sends (noisy; for debugging).
SQL_ECHO = env_bool("SQL_ECHO", False)

# Run `migrate` in the application's lifespan (under the migration lock).
MIGRATE_ON_STARTUP = False

# Seconds a start-up migration waits for a database that is away (down, restarting, failing over, a standby not
# yet promoted) before the worker fails; 0: fail at once.
MIGRATE_ON_STARTUP_WAIT = env_float("MIGRATE_ON_STARTUP_WAIT", 60.0)

# Seconds a migrate waits for another one's migration lock before giving up with a clear error.
MIGRATE_LOCK_TIMEOUT = env_float("MIGRATE_LOCK_TIMEOUT", 300.0)

# The migration lock: "auto" (the engine's own: advisory lock on PostgreSQL, GET_LOCK on MySQL/MariaDB, flock on
# SQLite, a lease row on Galera) or "lease" (the lease row on PostgreSQL and MySQL/MariaDB too, for servers whose
# advisory locks exclude nobody; SQLite keeps its flock).
MIGRATE_LOCK = env("MIGRATE_LOCK", "auto")

# The lease row only (Galera, MIGRATE_LOCK=lease): seconds the migration lock row stays taken once its holder
# stops renewing it (killed, or its node left). Keep it above the longest DDL statement, which stalls the renewals.
MIGRATE_LOCK_LEASE = env_float("MIGRATE_LOCK_LEASE", 60.0)

# Per statement of every revision migrate runs (project.core.runner.timeouts): how long DDL waits for a table's lock
# (not the migration lock above), a statement's time limit (0: none), and the retries of a revision whose lock
# was not granted, after MIGRATE_LOCK_RETRY_DELAY seconds, doubled each time.
MIGRATE_DDL_LOCK_TIMEOUT = env_float("MIGRATE_DDL_LOCK_TIMEOUT", 5.0)
MIGRATE_STATEMENT_TIMEOUT = env_float("MIGRATE_STATEMENT_TIMEOUT", 0.0)
MIGRATE_LOCK_RETRIES = int(env_float("MIGRATE_LOCK_RETRIES", 3))
MIGRATE_LOCK_RETRY_DELAY = env_float("MIGRATE_LOCK_RETRY_DELAY", 2.0)

# Refuse destructive migration steps unless `migrate --allow-destructive` is given.
CONFIRM_DESTRUCTIVE = False

# Lint rule ids that `manage.py check` does not report (as Django's SILENCED_SYSTEM_CHECKS), e.g. ["P110"].
SILENCED_CHECKS: list[str] = []

# The naming convention the history's own operations were written under, applied while migrations run
# (dotted path to a dict, e.g. "project.app.models:NAMING_CONVENTION"). None, the default: a constraint an
# operation leaves unnamed gets the database's own name, exactly as under plain Alembic's env.py. Autogenerate
# always compares with TARGET_METADATA (and so writes explicit names).
MIGRATIONS_NAMING_CONVENTION: str | None = None

# The fleet (docs/phases.md): every app instance writes its row (its code's head) on start and every FLEET_HEARTBEAT
# seconds, deletes it on a clean shutdown, and ages out after 3 missed beats; `migrate` holds back a contract
# revision while a live instance runs code older than it. 0 turns it off (the instance writes no row).
FLEET_HEARTBEAT = env_float("FLEET_HEARTBEAT", 30.0)
