"""PostgreSQL, as the project's settings.prod: refuses to load without PROD_DATABASE_URL, confirms drops."""

from fixture_app.settings.base import *  # noqa: F403
from project.core.conf import env, env_bool, require_env

DATABASE_URL = require_env("PROD_DATABASE_URL", "postgresql+psycopg2://app:PASSWORD@db.example.com:5432/app")
MIGRATION_DATABASE_URL = env("PROD_MIGRATION_DATABASE_URL")
CONFIRM_DESTRUCTIVE = env_bool("CONFIRM_DESTRUCTIVE", True)
# An applied revision edited since its apply stops migrate (manage.py repair records it after review).
CHECKSUM_MISMATCH = env("CHECKSUM_MISMATCH", "error")
