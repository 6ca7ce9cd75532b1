"""The applied log on a 3-node MariaDB Galera cluster: migrators racing on three nodes create the log once (its
table has a primary key, so Galera replicates it) and every node holds the same rows, one per revision."""

from __future__ import annotations

import sqlalchemy as sa
from test_topology_galera import REVISIONS, finish, galera_database, manage  # noqa: F401 - the fixture

from project.core.history import applied_log


def test_log_on_three_nodes(galera_database: list[str]) -> None:  # noqa: F811 - the imported fixture
    results = [finish(p) for p in [manage(url, "migrate", "-v0") for url in galera_database]]
    assert [status for status, _, _ in results] == [0, 0, 0], results
    logs = []
    for url in galera_database:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as connection:
                table = applied_log.log_table
                logs.append([tuple(row) for row in connection.execute(
                    sa.select(table.c.id, table.c.revision, table.c.state, table.c.checksum).order_by(table.c.id))])
        finally:
            engine.dispose()
    assert [(revision, state) for _, revision, state, _ in logs[0]] == [(rev, "applied") for rev in REVISIONS]
    assert logs[1] == logs[0] and logs[2] == logs[0]
    # A second round finds the checksums in order on whichever node it reaches (test settings: errors stop).
    status, stdout, stderr = finish(manage(galera_database[2], "migrate"))
    assert status == 0 and "No migrations to apply." in stdout and stderr == "", stdout + stderr
