"""Alembic environment: the connection comes from the selected settings, never from alembic.ini.

Called by `manage.py` (settings and often a live connection in config.attributes), by
pytest-alembic (a connection in config.attributes) and by plain `alembic` (settings from
$SETTINGS_MODULE, default dev).
"""

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Engine, make_url

config = context.config

if config.cmd_opts is not None and config.config_file_name is not None:
    # Plain `alembic ...` on the command line: log like Alembic does. manage.py, pytest-alembic
    # and other callers from code keep their own logging (and manage.py prints its own lines).
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def get_settings():
    """The caller's settings, else $SETTINGS_MODULE's: loaded only when a URL is needed."""
    if "settings" not in config.attributes:
        from project.core.conf import load_settings

        config.attributes["settings"] = load_settings()
    return config.attributes["settings"]


def target_metadata():
    """The MetaData named by the TARGET_METADATA setting (autogenerate compares against it); None if unset."""
    from project.core.conf import import_string

    path = get_settings().get("TARGET_METADATA")
    return import_string(path) if path else None


def configure_options(dialect_name: str) -> dict:
    return {
        "target_metadata": target_metadata(),
        # Batch mode rebuilds tables on SQLite only; on MySQL/PostgreSQL it is a plain ALTER.
        "render_as_batch": dialect_name == "sqlite",
        "transaction_per_migration": True,
        "compare_type": True,
        # Hooks from callers (per-revision progress, for instance).
        **config.attributes.get("configure_options", {}),
    }


def run_migrations_offline() -> None:
    """Emit SQL for a dialect without connecting: only the dialect's name is needed."""
    dialect_name = config.attributes.get("dialect_name") or make_url(get_settings().DATABASE_URL).get_backend_name()
    context.configure(dialect_name=dialect_name, literal_binds=True, **configure_options(dialect_name))
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if isinstance(connection, Engine):
        # pytest-alembic hands over an Engine for some commands.
        with connection.connect() as conn:
            _run_on(conn)
            conn.commit()
        return
    if connection is not None:
        _run_on(connection)
        return
    from project.core.db import engine_from_settings

    engine = engine_from_settings(get_settings())
    try:
        with engine.connect() as connection:
            _run_on(connection)
    finally:
        engine.dispose()


def _run_on(connection) -> None:
    context.configure(connection=connection, **configure_options(connection.dialect.name))
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
