"""Authoring: writing revisions (`makemigrations`) and squashes (`squashmigrations`).

`autogen` (Alembic's autogenerate with this tool's rewriters), `questioner` (renamed? a default for NOT NULL?),
`renames`, `constraint_names`, `enum_types` (PostgreSQL's enum types as operations), `concurrent_indexes`
and `squash_writer`. Imports the history and the foundation.
"""
