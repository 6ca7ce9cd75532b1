"""The tool's own test application: projects and their tasks.

The tests of project.core run on this application, not on the demo in project.app, so they keep
passing when the demo is removed (docs/start.md). It has what any application
gives the tool: models (models.py), a history that builds them (migrations/versions/, each revision
one kind of change the tool must handle on three engines: create, add NOT NULL with a default, widen,
rename, unique + index, a PostgreSQL enum type, a data migration, a drop), and settings that name
them (settings/). migrations/env.py and script.py.mako are links to the project's own.
"""
