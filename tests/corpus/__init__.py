"""Real Alembic histories written elsewhere, vendored with their licences (see README.md here)."""
