"""Settings shared by every environment. Environment modules import * from here and override."""

from project import ROOT
from project.conf import env, env_bool

BASE_DIR = ROOT

DEBUG = False

# The SQLAlchemy URL of the database this environment migrates; each environment module sets it.
DATABASE_URL: str

# Echo every SQL statement SQLAlchemy sends (noisy; for debugging).
SQL_ECHO = env_bool("SQL_ECHO", False)

# Run `migrate` in the application's lifespan (under the migration lock).
MIGRATE_ON_STARTUP = False

# Seconds a migrate waits for another one's migration lock before giving up with a clear error.
MIGRATE_LOCK_TIMEOUT = float(env("MIGRATE_LOCK_TIMEOUT", "300"))

# Refuse destructive migration steps unless `migrate --allow-destructive` is given.
CONFIRM_DESTRUCTIVE = False
