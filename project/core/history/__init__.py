"""The history: the version files and what they say, read without taking a lock.

`scripts` (Alembic's Config and ScriptDirectory from settings, the revisions they name), `plan` (what a move
from the database's heads to a target runs), `squash` (a squash standing in for its range), `checksums`,
`applied_log` (what ran, when, by whom: the record beside alembic_version), `scratch` (the history replayed into
a cached SQLite database) and `enums` (the named enums the version files define).
Imports only the foundation (conf, errors, db, bookkeeping).
"""
