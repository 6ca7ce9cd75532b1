"""DBOS Transact's system database history: PostgreSQL only (a schema, an extension, PL/pgSQL triggers)."""

from pathlib import Path

from corpus.base import *  # noqa: F403

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
