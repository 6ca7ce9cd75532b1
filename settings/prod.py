"""Production: PostgreSQL. Refuses to load without PROD_DATABASE_URL."""

from project.core.conf import env, env_bool, require_env
from settings.base import *  # noqa: F403

DEBUG = False
DATABASE_URL = require_env("PROD_DATABASE_URL", "postgresql+psycopg2://app:PASSWORD@db.example.com:5432/app")
MIGRATION_DATABASE_URL = env("PROD_MIGRATION_DATABASE_URL")
MIGRATE_ON_STARTUP = env_bool("MIGRATE_ON_STARTUP", False)
CONFIRM_DESTRUCTIVE = env_bool("CONFIRM_DESTRUCTIVE", True)
# An applied revision edited since its apply stops migrate (manage.py repair records it after review).
CHECKSUM_MISMATCH = env("CHECKSUM_MISMATCH", "error")
