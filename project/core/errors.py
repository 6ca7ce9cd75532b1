"""Turn any failure into one line a person can act on, with every password masked."""

from __future__ import annotations

import re
from typing import Any

from project.core.conf import ImproperlyConfigured


def mask_url(url: Any) -> str:
    """The URL as text with its password replaced by ***."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", str(url))


def _passwords(settings: Any) -> list[str]:
    """The passwords of the settings' URLs: DATABASE_URL and MIGRATION_DATABASE_URL."""
    urls = [settings.get(name) for name in ("DATABASE_URL", "MIGRATION_DATABASE_URL")] if settings is not None else []
    return [p for p in (_url_password(url) for url in urls if url) if p]


def _url_password(url: Any) -> str | None:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).password
    except Exception:
        match = re.search(r"://[^:/@]*:([^@]*)@", str(url))
        return match.group(1) if match else None


def mask_secrets(text: str, settings: Any = None) -> str:
    for password in _passwords(settings):
        text = text.replace(str(password), "***")
    # Any URL that slipped into a driver message.
    return re.sub(r"(\w+(?:\+\w+)?://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)


def _where(settings: Any, failed_url: str | None = None) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(failed_url or settings.DATABASE_URL)
    if url.get_backend_name() == "sqlite":
        return f"SQLite database {url.database or ':memory:'}"
    return f"{url.get_backend_name()} server {url.host or 'localhost'}:{url.port or _default_port(url)}"


def _default_port(url: Any) -> int:
    return {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}.get(url.get_backend_name(), 0)


def describe(exc: BaseException, settings: Any = None) -> tuple[str, int]:
    """(one-line message, exit status) for an exception raised by a command."""
    message, code = _describe(exc, settings)
    first_line = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
    return mask_secrets(first_line, settings), code


def _describe(exc: BaseException, settings: Any) -> tuple[str, int]:
    from project.core.management.base import CommandError

    if isinstance(exc, CommandError):
        return str(exc), exc.returncode
    if isinstance(exc, ImproperlyConfigured):
        return str(exc), 2
    if isinstance(exc, ModuleNotFoundError) and exc.name in {"psycopg2", "pymysql", "MySQLdb", "psycopg"}:
        return f"The database driver '{exc.name}' is not installed: pip install it or change DATABASE_URL.", 1
    if isinstance(exc, ModuleNotFoundError) and _url_driver(settings):
        # e.g. postgresql+asyncpg://: SQLAlchemy knows the dialect, but its driver module is missing.
        return (f"The module '{exc.name}' is not installed, and DATABASE_URL's driver "
                f"'{_url_driver(settings)}' needs it: pip install it or pick an installed driver "
                "(postgresql+psycopg2, mysql+pymysql, sqlite).", 1)
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{_relative(exc.filename)}:{exc.lineno}: syntax error: {exc.msg}. Fix the file.", 1

    try:
        from alembic.util.exc import CommandError as AlembicCommandError
        from sqlalchemy import exc as sa_exc
    except ImportError:  # pragma: no cover - both are dependencies
        return f"{type(exc).__name__}: {exc}", 1

    if isinstance(exc, AlembicCommandError):
        return str(exc), 1
    # NoSuchModuleError is an ArgumentError: the more precise message first.
    if isinstance(exc, sa_exc.NoSuchModuleError):
        return (f"Unknown database dialect or driver in DATABASE_URL ({exc}): use e.g. postgresql+psycopg2, "
                "mysql+pymysql or sqlite.", 2)
    if isinstance(exc, sa_exc.ArgumentError):
        return f"DATABASE_URL is malformed ({exc}); expected dialect+driver://user:password@host:port/database.", 2
    if isinstance(exc, sa_exc.OperationalError) and settings is not None:
        return _describe_operational(exc, settings), 1
    if isinstance(exc, sa_exc.DBAPIError):
        return f"The database refused a statement: {str(exc.orig).strip()}", 1
    return f"{type(exc).__name__}: {exc} (run with --traceback for details)", 1


def _url_driver(settings: Any) -> str | None:
    try:
        from sqlalchemy.engine import make_url

        return make_url(settings.DATABASE_URL).drivername
    except Exception:
        return None


def _relative(path: str) -> str:
    from pathlib import Path

    from project.core.conf import project_dir

    try:
        return str(Path(path).resolve().relative_to(project_dir()))
    except ValueError:
        return path


def _describe_operational(exc: Any, settings: Any) -> str:
    detail = " ".join(str(exc.orig).split())
    # The migration connection (migrator.locked_connection) tags its errors with its URL and setting.
    failed_url, setting = getattr(exc, "database_url", None), getattr(exc, "database_setting", "DATABASE_URL")
    where = _where(settings, failed_url)
    lowered = detail.lower()
    if "password authentication failed" in lowered or "access denied" in lowered:
        return f"Login refused by {where}: wrong user or password ({detail}). Check {setting}."
    if "does not exist" in lowered or "unknown database" in lowered:
        return f"The database does not exist on {where} ({detail}). Create it first."
    if any(s in lowered for s in ("connection refused", "can't connect", "could not connect", "timed out",
                                  "could not translate host", "name or service not known")):
        return f"Cannot reach {where}: {detail}. Is the server running, and is {setting} right?"
    if "unable to open database file" in lowered:
        return f"Cannot open {where}: its directory is missing or not writable."
    if "readonly database" in lowered or "read-only" in lowered:
        return f"{where} is read-only: {detail}."
    return f"{where}: {detail}"
