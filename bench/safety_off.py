#!/usr/bin/env python
"""Run `manage.py` with some of migrate's safety features replaced by no-ops, to see what each one costs.

    python bench/safety_off.py FEATURE[,FEATURE...] path/to/manage.py migrate ...

For bench/run.py's "safety" section only: nothing of this is a setting, on purpose. The features:

- `checksums`: no verification of the applied revisions' checksums, and no checksum in the log rows;
- `applied_log`: no applied log at all (no verification, no table, no rows; implies `checksums`);
- `timeouts`: no lock/statement timeout statements on the migration session;
- `lock`: no migration lock (advisory lock, GET_LOCK, flock);
- `topology`: no check of the migration target (standby, read-only server, transaction pooler: on PostgreSQL
  the pooler probe opens a second connection).

CONFIRM_DESTRUCTIVE is a setting already: the bench turns it off through the environment.
"""

from __future__ import annotations

import contextlib
import runpy
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FEATURES = ("checksums", "applied_log", "timeouts", "lock", "topology")


def switch_off(features: set[str]) -> None:
    from project.core.history import applied_log

    if "applied_log" in features or "checksums" in features:
        applied_log.verify = lambda *_a, **_k: None
    if "checksums" in features:
        applied_log.Recorder._checksum = lambda self, step: None  # type: ignore[method-assign,assignment,return-value]
    if "applied_log" in features:
        applied_log.prepare = lambda *_a, **_k: None  # type: ignore[assignment]
    if "timeouts" in features:
        from project.core.runner import timeouts

        @contextlib.contextmanager
        def no_timeouts(*_a: Any, **_k: Any) -> Iterator[None]:
            yield

        timeouts.session_timeouts = no_timeouts
    if "lock" in features:
        from project.core.runner import locks

        @contextlib.contextmanager
        def no_lock(*_a: Any, **_k: Any) -> Iterator[None]:
            yield

        locks.migration_lock = no_lock
    if "topology" in features:
        from project.core.runner import topology

        topology.check_migration_target = lambda *_a, **_k: None


def main(argv: list[str]) -> None:
    features = {f for f in argv[0].split(",") if f}
    unknown = features - set(FEATURES)
    if unknown:
        raise SystemExit(f"unknown feature(s) {sorted(unknown)}; known: {', '.join(FEATURES)}")
    manage = Path(argv[1]).resolve()
    sys.path.insert(0, str(manage.parent))  # the tree's own project package, as `python manage.py` finds it
    switch_off(features)
    sys.argv = [str(manage), *argv[2:]]
    runpy.run_path(str(manage), run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
