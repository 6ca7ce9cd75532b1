"""Per-environment settings modules: dev (SQLite), test (MySQL/MariaDB), prod (PostgreSQL)."""
