"""One SQLite table rebuild, timed in-process so the rebuild itself is compared, not interpreter start-up.

    python rebuild.py make DB ROWS     # the table: big(id, name VARCHAR(50), counter, note) + an index
    python rebuild.py alter_column DB  # Alembic batch mode: name VARCHAR(50) -> VARCHAR(200)
    python rebuild.py hand DB          # the floor: CREATE new + INSERT SELECT + DROP + RENAME (+ the index)
    python rebuild.py add_column DB    # Alembic batch add_column that SQLite can do with ALTER

Prints JSON: seconds, the statements that changed the database, whether the table was copied.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CREATE = ("CREATE TABLE {name} (id INTEGER NOT NULL, name VARCHAR({width}), counter INTEGER, note VARCHAR(100), "
          "PRIMARY KEY (id))")


def make(path: str, rows: int) -> None:
    con = sqlite3.connect(path)
    con.execute(CREATE.format(name="big", width=50))
    con.execute("CREATE INDEX ix_big_counter ON big (counter)")
    con.executemany("INSERT INTO big VALUES (?, ?, ?, ?)",
                    ((i, f"name {i}", i % 1000, "some note text") for i in range(1, rows + 1)))
    con.commit()
    con.close()


def hand(path: str) -> tuple[float, list[str]]:
    statements = [
        "BEGIN",
        CREATE.format(name="big_new", width=200),
        "INSERT INTO big_new (id, name, counter, note) SELECT id, name, counter, note FROM big",
        "DROP TABLE big",
        "ALTER TABLE big_new RENAME TO big",
        "CREATE INDEX ix_big_counter ON big (counter)",
        "COMMIT",
    ]
    con = sqlite3.connect(path, isolation_level=None)
    start = time.perf_counter()
    for statement in statements:
        con.execute(statement)
    elapsed = time.perf_counter() - start
    con.close()
    return elapsed, statements


def alembic(path: str, kind: str) -> tuple[float, list[str]]:
    import sqlalchemy as sa
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import event

    from project.core.db import create_engine_for

    engine = create_engine_for(f"sqlite:///{path}")
    statements: list[str] = []
    with engine.connect() as conn:
        event.listen(conn, "before_cursor_execute", lambda _c, _cur, statement, *_: statements.append(statement))
        start = time.perf_counter()
        with conn.begin():
            op = Operations(MigrationContext.configure(conn))
            with op.batch_alter_table("big") as batch_op:
                if kind == "alter_column":
                    batch_op.alter_column("name", existing_type=sa.String(50), type_=sa.String(200),
                                          existing_nullable=True)
                else:
                    batch_op.add_column(sa.Column("extra", sa.Integer(), server_default="0", nullable=False))
        elapsed = time.perf_counter() - start
    engine.dispose()
    writes = [" ".join(s.split()) for s in statements if not s.lstrip().upper().startswith(("SELECT", "PRAGMA"))]
    return elapsed, writes


def main() -> None:
    action, path = sys.argv[1], sys.argv[2]
    if action == "make":
        make(path, int(sys.argv[3]))
        return
    elapsed, statements = hand(path) if action == "hand" else alembic(path, action)
    copies = any("_alembic_tmp" in s or "INSERT INTO" in s.upper() for s in statements)
    print(json.dumps({"seconds": elapsed, "statements": statements, "copies_table": copies}))


if __name__ == "__main__":
    main()
