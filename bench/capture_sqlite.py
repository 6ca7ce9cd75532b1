"""Run the history online on a scratch SQLite database and print the SQL that changed it.

The raw-SQL floor for SQLite: Alembic cannot render batch table rebuilds offline, so we record the
statements SQLite really executed (sqlite3's trace callback gives them with their parameters
inlined), drop the reads (reflection SELECTs and PRAGMAs), and replay the rest with the sqlite3 CLI.

    cd TREE && python capture_sqlite.py DB_PATH up|down OUT_SQL
Run from a project tree (bench/histories.make_tree); `down` expects the database at head.
"""

from __future__ import annotations

import sys
from pathlib import Path

READS = ("SELECT", "PRAGMA")


def main() -> None:
    db_path, direction, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    sys.path.insert(0, str(Path.cwd()))
    from alembic import command
    from sqlalchemy import event

    from project.core.conf import load_settings
    from project.core.db import create_engine_for
    from project.core.history.scripts import alembic_config

    settings = load_settings("dev")
    engine = create_engine_for(f"sqlite:///{db_path}")
    statements: list[str] = []

    @event.listens_for(engine, "connect")
    def _trace(dbapi_connection, _record) -> None:
        dbapi_connection.set_trace_callback(statements.append)

    with engine.connect() as connection:
        cfg = alembic_config(settings, connection=connection)
        if direction == "up":
            command.upgrade(cfg, "head")
        else:
            command.downgrade(cfg, "base")
    engine.dispose()
    kept = [s.strip() for s in statements if s.strip() and not s.lstrip().upper().startswith(READS)]
    out.write_text("".join(s.rstrip(";") + ";\n" for s in kept))
    print(f"{len(statements)} {len(kept)}")


if __name__ == "__main__":
    main()
