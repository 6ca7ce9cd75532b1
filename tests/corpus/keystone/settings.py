"""Keystone's history: expand/contract branches on one initial revision; SQLite, MySQL/MariaDB, PostgreSQL.

Its initial revision imports six names from keystone and oslo; shim/ provides them (see README.md)."""

import sys
from pathlib import Path

from corpus.base import *  # noqa: F403

HERE = Path(__file__).resolve().parent
MIGRATIONS_DIR = HERE / "migrations"
if str(HERE / "shim") not in sys.path:
    sys.path.insert(0, str(HERE / "shim"))
