"""What the corpus histories' settings share: the fixture application's dev settings (DATABASE_URL from
DEV_DATABASE_URL, so the tests' db_url points them at each engine), without its models."""

from fixture_app.settings.dev import *  # noqa: F403

# A history brought without its project's models: nothing for models-vs-migrations to compare with.
TARGET_METADATA = None
