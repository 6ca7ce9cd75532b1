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


def runtime_metadata():
    """What the version files' operations see as their MetaData while they run.

    Autogenerate compares with TARGET_METADATA. Running migrations, its models are imported as a stock env.py
    imports them, but the MetaData is not given to Alembic: Alembic would also apply that
    MetaData's naming convention to every constraint an operation leaves unnamed, so a history written
    without one (most histories written for plain Alembic) would get other names than under its own
    env.py, and a later drop by the database's own name would fail. So at run time only the convention
    named by MIGRATIONS_NAMING_CONVENTION applies (None: the database names them, as plain Alembic does).
    """
    # `alembic revision --autogenerate`, makemigrations and pytest-alembic's model test all hand Alembic's
    # RevisionContext to the environment (alembic.command.revision/check); running migrations never does.
    # (The proxy module exposes only class attributes: the options are read from the instance. The
    # makemigrations and pytest-alembic tests fail loudly if Alembic changes this.)
    if context._proxy.context_opts.get("revision_context") is not None:
        return target_metadata()
    # A stock env.py imports the models at its top (`from app.models import Base`): the version files then run
    # with the models' modules loaded, and with what those import (sqlalchemy.orm, say), which many histories
    # rely on without importing it themselves (`sa.orm.Session(bind=op.get_bind())`). So they are imported here
    # too, though not handed to Alembic. (An import costs once per process; an at-head migrate runs no env.py.)
    # Models that fail to import do not stop migrate: the version files rarely need them, migrate's note about
    # the models says what failed, and a file that does need them fails with its own NameError.
    try:
        target_metadata()
    except Exception:
        pass
    path = get_settings().get("MIGRATIONS_NAMING_CONVENTION")
    if not path:
        return None
    from sqlalchemy import MetaData

    from project.core.conf import import_string

    return MetaData(naming_convention=import_string(path))


def configure_options(dialect_name: str) -> dict:
    return {
        "target_metadata": runtime_metadata(),
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
    # Plain `alembic`: a connection of our own. With an async driver, sync_entry runs this as
    # Alembic's async template does (connection.run_sync); with a sync one it is a plain call.
    from project.core.db import sync_entry

    sync_entry(_run_standalone)()


def _run_standalone() -> None:
    from project.core.db import connect

    settings = get_settings()
    with connect(settings.DATABASE_URL, echo=bool(settings.get("SQL_ECHO", False))) as connection:
        _run_on(connection)


def _run_on(connection) -> None:
    options = configure_options(connection.dialect.name)
    if connection.dialect.name != "sqlite":
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()
        return
    # SQLite enforces foreign keys on our connections (project.core.db), but a batch rebuild drops and
    # re-creates tables, which with enforcement on would cascade or fail. SQLite's documented procedure:
    # enforcement off for the rebuild, PRAGMA foreign_key_check before the revision commits.
    from alembic.util import to_tuple

    from project.core.db import sqlite_foreign_keys_off

    options["on_version_apply"] = (_foreign_key_check, *to_tuple(options.get("on_version_apply"), default=()))
    with sqlite_foreign_keys_off(connection):
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()


def _foreign_key_check(*, ctx, **_) -> None:
    """Runs inside each revision's transaction, before it commits: a violation rolls the revision back."""
    from project.core.db import check_sqlite_foreign_keys

    check_sqlite_foreign_keys(ctx.connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
