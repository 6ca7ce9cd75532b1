"""SQLite's batch copy of a retyped column, without the CAST that loses dates.

Alembic rebuilds a SQLite table to change a column's type and copies the rows with CAST(column AS new type) when
the type's affinity changes. SQLite keeps dates and datetimes as ISO text (SQLAlchemy writes and reads them so),
and a type named DATETIME has NUMERIC affinity: CAST('2020-01-02' AS DATETIME) is the number 2020. Between date
and time types the text is copied as it is: '2020-01-02' reads back as that day's midnight. Registering the
subclass under "sqlite" makes Alembic use it for every SQLite migration run in a process that imported this
module (project.core.history.scripts does: migrate, the scratch replays, squash); a file run by plain `alembic`
keeps Alembic's CAST.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.ddl.sqlite import SQLiteImpl

_DATES = (sa.Date, sa.DateTime, sa.Time)


class SQLiteBatchImpl(SQLiteImpl):
    __dialect__ = "sqlite"

    def cast_for_batch_migrate(self, existing: Any, existing_transfer: Any, new_type: Any) -> None:
        if isinstance(existing.type, _DATES) and isinstance(new_type, _DATES):
            return  # the ISO text as it is (see the module's docstring)
        super().cast_for_batch_migrate(existing, existing_transfer, new_type)
