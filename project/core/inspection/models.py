"""Models against migrations: changes the models have that no migration covers (`makemigrations --check`)."""

from __future__ import annotations

from typing import Any

from project.core.authoring.autogen import autogenerate_ops, describe_ops
from project.core.history.scratch import scratch_sqlite
from project.core.inspection.problem import Problem


def model_problems(settings: Any = None) -> list[Problem]:
    """What `makemigrations --check` finds: replays the history into a scratch SQLite, diffs the models."""

    if settings is not None and not settings.get("TARGET_METADATA"):
        # A history brought without its models (or before any exist): nothing to compare, nothing wrong.
        return [Problem("models: not compared with the migrations: TARGET_METADATA is not set", level="warning")]

    with scratch_sqlite(settings, "heads") as connection:  # every branch: the models describe them all
        ops = autogenerate_ops(connection, settings)
    return [Problem(f"models: the models need '{phrase}', which no migration covers: run "
                    "`manage.py makemigrations`") for phrase in describe_ops(ops)]
