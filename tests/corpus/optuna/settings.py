"""Optuna's RDB storage history (multi-dialect: SQLite, MySQL/MariaDB, PostgreSQL), with optuna's own models."""

from pathlib import Path

from corpus.base import *  # noqa: F403

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Its data migrations import optuna (installed by the test extra); its models are optuna's own.
TARGET_METADATA = "optuna.storages._rdb.models:BaseModel.metadata"
