"""MySQL/MariaDB, as the project's settings.test."""

from fixture_app.settings.base import *  # noqa: F403
from project.core.conf import env, env_bool

DATABASE_URL = env("TEST_DATABASE_URL", "mysql+pymysql://app:app@127.0.0.1:3306/app?charset=utf8mb4")
MIGRATION_DATABASE_URL = env("TEST_MIGRATION_DATABASE_URL")
CONFIRM_DESTRUCTIVE = env_bool("CONFIRM_DESTRUCTIVE", False)
# An applied revision edited since its apply stops migrate (manage.py repair records it after review).
CHECKSUM_MISMATCH = env("CHECKSUM_MISMATCH", "error")
