"""The tool's one error model, and how any failure becomes one line a person can act on.

- CommandError: a command's clean failure (one stderr line, exit status `returncode`); management.base
  re-exports it, as Django's does.
- MigrationError and its family: a migration request that cannot be carried out; migrator re-exports them.
- ImproperlyConfigured (project.core.conf): settings that cannot be used.
- Database failures (SQLAlchemy's DBAPIError) are classified by what the driver reports, never by its
  message text, which the server may translate: PostgreSQL's SQLSTATE (psycopg2 `.pgcode`, psycopg
  `.sqlstate`), MySQL/MariaDB's error number (`args[0]`), SQLite's result-code name
  (`sqlite_errorname`) and the dialect's own `is_disconnect()`.

Every message that leaves here has the password of any URL in it masked, and nothing else touched.
"""

from __future__ import annotations

import os
import re
import socket
from enum import Enum
from typing import Any

from project.core.conf import ImproperlyConfigured

__all__ = [
    "CommandError", "MigrationError", "DestructiveStepsRefused", "UnknownRevision", "Interrupted", "DatabaseFailure",
    "ImproperlyConfigured", "classify", "is_environmental", "describe", "mask_url", "mask_secrets",
]


class CommandError(Exception):
    """A clean failure: printed as one line on stderr, exit status `returncode`."""

    def __init__(self, message: str, returncode: int = 1):
        super().__init__(message)
        self.returncode = returncode


class MigrationError(Exception):
    """A migration request that cannot be carried out (bad target, several heads, a failed revision...)."""


class Interrupted(KeyboardInterrupt):
    """The process was told to stop (SIGINT, or SIGTERM where a command turns it into this): printed as one
    line on stderr, exit status 128 + the signal's number. A KeyboardInterrupt, so that whatever catches
    Ctrl-C (SQLAlchemy invalidates a connection interrupted mid-statement) treats SIGTERM alike."""

    def __init__(self, message: str = "", signal_name: str = "SIGINT", returncode: int = 130):
        super().__init__(message)
        self.message = message or f"Interrupted ({signal_name})."
        self.signal_name = signal_name
        self.returncode = returncode

    def __str__(self) -> str:
        return self.message


class DestructiveStepsRefused(MigrationError):
    """CONFIRM_DESTRUCTIVE is on and the plan has a step that destroys data."""


class UnknownRevision(MigrationError):
    """The database records a revision that no version file of this checkout defines."""

    def __init__(self, revision: str):
        super().__init__(
            f"The database is at revision {revision}, which no version file defines: "
            "is this checkout older than the database?"
        )
        self.revision = revision


# Alembic's warning when two version files define the same revision id (alembic.script.revision); the
# history module turns it into an error, described below.
DUPLICATE_REVISION_WARNING = r"Revision (?P<revision>\S+) is present more than once"


# --- masking --------------------------------------------------------------------------------------

# scheme://user:password@ (the scheme as SQLAlchemy and RFC 3986 spell it, e.g. postgresql+psycopg2).
_URL_CREDENTIALS = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)(?P<password>[^@\s]*)@")


def mask_url(url: Any) -> str:
    """The URL as text with its password replaced by ***, and, for a URL given as text, nothing else changed
    (SQLAlchemy's rendering re-quotes the query: a multi-host `?host=h1:5432&host=h2:5432` would read
    `h1%3A5432`)."""
    from urllib.parse import quote

    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:
        return _URL_CREDENTIALS.sub(r"\g<head>***@", str(url))
    masked = parsed.render_as_string(hide_password=True)
    if not isinstance(url, str):
        return masked
    if parsed.password is None:
        return url
    if parsed.render_as_string(hide_password=False) == url:
        return masked
    # Written otherwise than SQLAlchemy renders it: the password as written (raw or percent-quoted) goes.
    scheme_end = url.find("://") + 3
    head = url[:scheme_end] + url[scheme_end:].split(":", 1)[0] + ":"
    for written in dict.fromkeys((parsed.password, quote(parsed.password, safe=""),
                                  quote(parsed.password, safe="!$&'()*+,;=~"))):
        if url.startswith(head + written + "@"):
            return head + "***" + url[len(head) + len(written):]
    return masked


def mask_secrets(text: str, settings: Any = None) -> str:
    """`text` with the password of every URL in it masked, and nothing else changed.

    The settings' DATABASE_URL is replaced whole where it appears as written or as SQLAlchemy renders
    it (a password holding '@' or spaces defeats any pattern); then any other `scheme://user:pw@`.
    The password alone is never searched for: it may be `s` or `postgres`, found in every sentence.
    """
    for raw in _url_spellings(settings):
        text = text.replace(raw, mask_url(raw))
    return _URL_CREDENTIALS.sub(r"\g<head>***@", text)


def _url_spellings(settings: Any) -> list[str]:
    """DATABASE_URL and MIGRATION_DATABASE_URL as written and as SQLAlchemy renders them, longest first."""
    spellings: set[str] = set()
    for name in ("DATABASE_URL", "MIGRATION_DATABASE_URL"):
        url = settings.get(name) if settings is not None else None
        if not url:
            continue
        try:
            from sqlalchemy.engine import make_url

            parsed = make_url(url)
            if not parsed.password:
                continue
            spellings.add(parsed.render_as_string(hide_password=False))
        except Exception:
            pass
        spellings.add(str(url))
    # Longest first: a rendering must not be half-replaced by a shorter one it contains.
    return sorted(spellings, key=len, reverse=True)


# --- database failures ----------------------------------------------------------------------------


class DatabaseFailure(Enum):
    LOGIN = "login refused"
    NO_DATABASE = "no such database"
    LOGIN_OR_NO_DATABASE = "login or database refused"
    SSL = "SSL negotiation failed"
    UNREACHABLE = "server unreachable"
    CANNOT_OPEN = "cannot open the file"
    READ_ONLY = "read-only"
    DISK_FULL = "disk full"
    DISCONNECTED = "connection lost"
    OTHER = "other"


# What the environment did, not the revision: a migration failing this way is reported as such.
ENVIRONMENTAL = {DatabaseFailure.UNREACHABLE, DatabaseFailure.CANNOT_OPEN, DatabaseFailure.READ_ONLY,
                 DatabaseFailure.DISK_FULL, DatabaseFailure.DISCONNECTED}

# PostgreSQL SQLSTATEs (Appendix A of its manual), by class or by exact code.
_PG_CODES = {
    "28P01": DatabaseFailure.LOGIN, "28000": DatabaseFailure.LOGIN,
    "3D000": DatabaseFailure.NO_DATABASE,
    "25006": DatabaseFailure.READ_ONLY,
    "53100": DatabaseFailure.DISK_FULL,
    "57P01": DatabaseFailure.DISCONNECTED, "57P02": DatabaseFailure.DISCONNECTED,
    "57P03": DatabaseFailure.UNREACHABLE,  # cannot_connect_now: starting up, shutting down, in recovery
}
_PG_CLASSES = {"08": DatabaseFailure.DISCONNECTED}

# MySQL/MariaDB error numbers (server errors < 2000, client library errors 2000-2999).
_MYSQL_ERRNOS = {
    1044: DatabaseFailure.LOGIN, 1045: DatabaseFailure.LOGIN, 1698: DatabaseFailure.LOGIN,
    1049: DatabaseFailure.NO_DATABASE,
    2026: DatabaseFailure.SSL,  # CR_SSL_CONNECTION_ERROR: SSL required, the server has none or the handshake failed
    2003: DatabaseFailure.UNREACHABLE, 2005: DatabaseFailure.UNREACHABLE,
    2006: DatabaseFailure.DISCONNECTED, 2013: DatabaseFailure.DISCONNECTED, 2055: DatabaseFailure.DISCONNECTED,
    1927: DatabaseFailure.DISCONNECTED,  # ER_CONNECTION_KILLED (MariaDB): the server ended this session
    1053: DatabaseFailure.DISCONNECTED,  # ER_SERVER_SHUTDOWN: shutdown in progress
    1290: DatabaseFailure.READ_ONLY, 1792: DatabaseFailure.READ_ONLY, 1836: DatabaseFailure.READ_ONLY,
    1021: DatabaseFailure.DISK_FULL, 1114: DatabaseFailure.DISK_FULL,
}

# SQLite primary result codes (sqlite3.Error.sqlite_errorname has the extended name, e.g. SQLITE_READONLY_DBMOVED).
_SQLITE_CODES = {
    "SQLITE_CANTOPEN": DatabaseFailure.CANNOT_OPEN,
    "SQLITE_READONLY": DatabaseFailure.READ_ONLY,
    "SQLITE_FULL": DatabaseFailure.DISK_FULL,
    "SQLITE_IOERR": DatabaseFailure.DISK_FULL,
    "SQLITE_PERM": DatabaseFailure.CANNOT_OPEN,
}


def classify(exc: BaseException, url: Any = None) -> DatabaseFailure:
    """What kind of database failure `exc` (a DBAPIError, or the driver's own exception) is.

    `url` (the DATABASE_URL) lets a failure without a code be placed: libpq reports no SQLSTATE
    for a connection that fails before login completes (psycopg issue #1188), so there a probe of
    the server's address decides between "unreachable" and "refused the login" (of each server of a
    multi-host URL, and "read-only" when the ones taking logins are standbys).
    """
    from sqlalchemy.exc import DBAPIError

    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return DatabaseFailure.DISCONNECTED
    sqlstate = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
    errno = _mysql_errno(orig)
    sqlite_name = getattr(orig, "sqlite_errorname", None)
    if sqlite_name:
        primary = "_".join(sqlite_name.split("_")[:2])  # SQLITE_READONLY_DBMOVED -> SQLITE_READONLY
        return _SQLITE_CODES.get(primary, DatabaseFailure.OTHER)
    if errno is not None and errno in _MYSQL_ERRNOS:
        import ssl

        if errno == 2003 and isinstance(getattr(orig, "original_exception", None), ssl.SSLError):
            return DatabaseFailure.SSL  # PyMySQL wraps a failed TLS handshake as "Can't connect" (2003)
        return _MYSQL_ERRNOS[errno]
    if isinstance(sqlstate, str) and errno is None:
        return _PG_CODES.get(sqlstate) or _PG_CLASSES.get(sqlstate[:2], DatabaseFailure.OTHER)
    parsed = _parse(url)
    if parsed is not None and _is_disconnect(parsed, orig):
        return DatabaseFailure.DISCONNECTED
    connecting = isinstance(exc, DBAPIError) and exc.statement is None
    if connecting and parsed is not None and parsed.get_backend_name() == "postgresql" and sqlstate is None:
        hosts = [(host, port) for host, port in _postgres_hosts(parsed) if not host.startswith("/")]
        if len(hosts) == 1:
            kind = _classify_postgres_login(*hosts[0], parsed)
            if kind is DatabaseFailure.LOGIN_OR_NO_DATABASE and _postgres_session(*hosts[0], parsed) is not None:
                # The server is asked after the failure, and now takes this very login: what failed was no login
                # but a moment without a server behind the address (HAProxy, between a primary's death and the
                # next one's promotion, closes connections without a word, and may route to the new primary by
                # the time it is asked).
                return DatabaseFailure.UNREACHABLE
            return kind
        if hosts:
            return _classify_postgres_hosts(hosts, parsed)
    return DatabaseFailure.OTHER


def _postgres_hosts(url: Any) -> list[tuple[str, int]]:
    """The (host, port) pairs a PostgreSQL URL names: its host, or libpq's host list as SQLAlchemy spells it in the
    query (?host=h1:5432&host=h2:5432)."""
    listed = url.query.get("host")
    if not listed or url.host:
        return [(url.host, url.port or _default_port(url))] if url.host else []
    hosts = []
    for item in [listed] if isinstance(listed, str) else listed:
        host, _, port = item.rpartition(":") if item.rpartition(":")[2].isdigit() else (item, "", "")
        hosts.append((host, int(port) if port else url.port or _default_port(url)))
    return hosts


def _classify_postgres_login(host: str, port: int, url: Any) -> DatabaseFailure:
    """A connection to one server refused before login: the server is asked what it says (see
    _postgres_startup_answer)."""
    if not _reachable(host, port):
        return DatabaseFailure.UNREACHABLE
    answer, startup_sqlstate = _postgres_startup_answer(host, port, url)
    if answer is None:
        # It takes the connection but says nothing to a startup packet: a proxy with no server behind it (HAProxy
        # while a failover has no primary to route to), or a server dying. Not a login.
        return DatabaseFailure.UNREACHABLE
    if startup_sqlstate == "57P03":
        return DatabaseFailure.UNREACHABLE  # starting up, shutting down or in recovery: not a login
    if _postgres_ssl_fails(host, port, url):
        return DatabaseFailure.SSL
    return DatabaseFailure.LOGIN_OR_NO_DATABASE


def _classify_postgres_hosts(hosts: list[tuple[str, int]], url: Any) -> DatabaseFailure:
    """A multi-host URL none of whose servers gave a session: unreachable when none takes logins; read-only when
    every one that does gives a read-only session (target_session_attrs=read-write while a failover has no primary
    yet); unreachable too when one now gives a writable session (asked after the failure, a standby promoted
    since); else a login refused somewhere."""
    kinds = [_classify_postgres_login(host, port, url) for host, port in hosts]
    if all(kind is DatabaseFailure.UNREACHABLE for kind in kinds):
        return DatabaseFailure.UNREACHABLE
    if DatabaseFailure.SSL in kinds:
        return DatabaseFailure.SSL
    # The rest take logins: libpq turned them down for being read-only, or the login failed.
    sessions = [_postgres_session(host, port, url) for (host, port), kind in zip(hosts, kinds, strict=True)
                if kind is not DatabaseFailure.UNREACHABLE]
    if all(read_only is True for read_only in sessions):
        return DatabaseFailure.READ_ONLY
    if None not in sessions:
        return DatabaseFailure.UNREACHABLE
    return DatabaseFailure.LOGIN_OR_NO_DATABASE


def _postgres_session(host: str, port: int, url: Any) -> bool | None:
    """Whether a login with the URL's credentials to this one server gives a read-only session (a standby); None
    when the login fails, or the URL's driver is an asyncio one (no event loop here to log in with)."""
    from sqlalchemy import create_engine, pool, text

    if getattr(url.get_dialect(), "is_async", False):
        return None
    single = url.difference_update_query(["host", "target_session_attrs"]).set(host=host, port=port)
    engine = create_engine(single, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return bool(connection.scalar(text("SELECT current_setting('transaction_read_only')")) == "on")
    except Exception:  # the login (or the driver) fails: no session we could have had
        return None
    finally:
        engine.dispose()


def is_environmental(exc: BaseException, url: Any = None) -> bool:
    """The database or its host failed (read-only, disk full, connection lost...), not the statement."""
    return classify(exc, url) in ENVIRONMENTAL


# Drivers whose exceptions carry MySQL's error number first in args (aiomysql raises PyMySQL's).
_MYSQL_DRIVER_MODULES = {"pymysql", "MySQLdb", "mysql", "asyncmy", "aiomysql"}


def _mysql_errno(orig: Any) -> int | None:
    # Other drivers' args[0] is text.
    args = getattr(orig, "args", ())
    module = type(orig).__module__ or ""
    if args and isinstance(args[0], int) and module.split(".")[0] in _MYSQL_DRIVER_MODULES:
        return args[0]
    return None


def _is_disconnect(url: Any, orig: Any) -> bool:
    """The dialect's own verdict (its is_disconnect) on a driver exception: the dialect is built with its DBAPI
    module, which its is_disconnect reads (psycopg2's checks `isinstance(e, self.dbapi.Error)`)."""
    try:
        dialect_class = url.get_dialect()
        dialect = dialect_class(dbapi=dialect_class.import_dbapi())
        return bool(dialect.is_disconnect(orig, None, None))
    except Exception:  # no such dialect, or its driver is not installed: no verdict
        return False


def _reachable(host: str, port: int, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:  # unknown host, refused, timed out
        return False


# PostgreSQL's SSLRequest: length 8, then the code 1234 5679 (protocol manual, "SSL Session Encryption").
_SSL_REQUEST = (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big")
_SSL_REQUIRED_MODES = {"require", "verify-ca", "verify-full"}


def _postgres_ssl_fails(host: str, port: int, url: Any, timeout: float = 3.0) -> bool:
    """Whether the SSL that `url` requires (libpq's sslmode, asyncpg's ssl) is what failed: libpq reports no
    SQLSTATE before login, so the server is asked the way libpq asks it. It answers 'N' to the SSLRequest when
    it has no SSL; with verify-ca/verify-full, a handshake that does not verify (or a root certificate file
    that is missing) is the failure too."""
    import ssl

    mode = url.query.get("sslmode") or url.query.get("ssl")
    if mode not in _SSL_REQUIRED_MODES:
        return False
    root = url.query.get("sslrootcert") or os.path.expanduser("~/.postgresql/root.crt")
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(_SSL_REQUEST)
            if sock.recv(1) != b"S":
                return True
            if mode == "require":
                return False  # SSL on offer, no certificate checked: the failure lies elsewhere
            if not os.path.exists(root):
                return True
            context = ssl.create_default_context(cafile=root)
            context.check_hostname = mode == "verify-full"
            try:
                context.wrap_socket(sock, server_hostname=host).close()
            except ssl.SSLError:
                return True
    except OSError:
        return False
    return False


def _postgres_startup_answer(host: str, port: int, url: Any, timeout: float = 3.0) -> tuple[bytes | None, str | None]:
    """How the server answers a startup packet: (the message type, the SQLSTATE of an ErrorResponse), or
    (None, None) when the connection closes (or stays silent) without an answer.

    libpq reports no SQLSTATE for a connection refused before login (psycopg issue #1188), yet the server
    sent one: a server that is starting up, shutting down or recovering answers any startup packet with an
    ErrorResponse ('E') 57P03 (cannot_connect_now) before authentication; one that takes logins asks for a
    password ('R'). So the server is asked the way libpq asks it (protocol 3.0 StartupMessage, without SSL).
    A PostgreSQL server always answers; what closes without a word is something in front of it (HAProxy with
    no server up behind it) or a server being killed."""
    def cstring(value: str) -> bytes:
        return value.encode() + b"\0"

    body = (196608).to_bytes(4, "big") + cstring("user") + cstring(url.username or "postgres")
    body += cstring("database") + cstring(url.database or url.username or "postgres") + b"\0"
    answer = b""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall((len(body) + 4).to_bytes(4, "big") + body)
            while len(answer) < 5 or len(answer) < 1 + int.from_bytes(answer[1:5], "big"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
    except OSError:  # reset, or nothing within the timeout: what came before it (if anything) decides
        pass
    if not answer:
        return None, None
    if answer[:1] != b"E":
        return answer[:1], None
    for field in answer[5:].split(b"\0"):
        if field[:1] == b"C":
            return b"E", field[1:].decode(errors="replace")
    return b"E", None


def _parse(url: Any) -> Any:
    if not url:
        return None
    try:
        from sqlalchemy.engine import make_url

        return make_url(url)
    except Exception:
        return None


# --- one line per failure -------------------------------------------------------------------------


def describe(exc: BaseException, settings: Any = None) -> tuple[str, int]:
    """(one-line message, exit status) for an exception raised by a command."""
    message, code = _describe(exc, settings)
    first_line = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
    return mask_secrets(first_line, settings), code


def _describe(exc: BaseException, settings: Any) -> tuple[str, int]:
    if isinstance(exc, CommandError):
        return str(exc), exc.returncode
    if isinstance(exc, ImproperlyConfigured):
        return str(exc), 2
    if isinstance(exc, MigrationError):
        return str(exc), 1
    if isinstance(exc, ModuleNotFoundError) and exc.name in {"psycopg2", "pymysql", "MySQLdb", "psycopg"}:
        return (f"The database driver '{exc.name}' is not installed: pip install it or change "
                f"{_variable(settings, 'DATABASE_URL')}.", 1)
    if isinstance(exc, ModuleNotFoundError) and _url_driver(settings):
        # e.g. postgresql+asyncpg://: SQLAlchemy knows the dialect, but its driver module is missing.
        return (f"The module '{exc.name}' is not installed, and {_variable(settings, 'DATABASE_URL')}'s driver "
                f"'{_url_driver(settings)}' needs it: pip install it or pick an installed driver "
                "(postgresql+psycopg2, mysql+pymysql, sqlite).", 1)
    if isinstance(exc, UserWarning) and (duplicate := re.fullmatch(DUPLICATE_REVISION_WARNING, str(exc))):
        return (f"Two version files define revision {duplicate['revision']}, so one of them would be ignored: give "
                "one a new id (and point the down_revision of what follows it there); `manage.py check` names "
                "both files.", 1)
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
        return (f"Unknown database dialect or driver in {_variable(settings, 'DATABASE_URL')} ({exc}): use e.g. "
                "postgresql+psycopg2, mysql+pymysql or sqlite.", 2)
    if isinstance(exc, sa_exc.ArgumentError):
        return (f"{_variable(settings, 'DATABASE_URL')} is malformed ({exc}); expected "
                "dialect+driver://user:password@host:port/database.", 2)
    if isinstance(exc, sa_exc.DBAPIError) and settings is not None:
        return describe_database_failure(exc, settings), 1
    if isinstance(exc, sa_exc.DBAPIError):
        return f"The database refused a statement: {_detail(exc)}", 1
    return f"{type(exc).__name__}: {exc} (run with --traceback for details)", 1


def describe_database_failure(exc: Any, settings: Any) -> str:
    """One line for a DBAPIError: where, what kind of failure, what to do; the driver's words in it."""
    detail = _detail(exc)
    # The migration connection (migrator.locked_connection) tags its errors with its URL and setting.
    failed_url = getattr(exc, "database_url", None) or settings.get("DATABASE_URL")
    setting = _variable(settings, getattr(exc, "database_setting", "DATABASE_URL"))
    where = _where(settings, failed_url)
    kind = classify(exc, failed_url)
    if kind is DatabaseFailure.LOGIN:
        return f"Login refused by {where}: wrong user or password ({detail}). Check {setting}."
    if kind is DatabaseFailure.NO_DATABASE:
        return f"The database does not exist on {where} ({detail}). Create it first."
    if kind is DatabaseFailure.LOGIN_OR_NO_DATABASE:
        # libpq gives no code here; the server's own words (in `detail`) say which of the two it was.
        return (f"Login refused by {where} ({detail}): wrong user or password, or the database does not exist. "
                f"Create it first if so, else check {setting}.")
    if kind is DatabaseFailure.SSL:
        return (f"SSL negotiation with {where} failed ({detail}): the server has no SSL, or its certificate does "
                f"not verify. Check the SSL options (sslmode, sslrootcert) in {setting}.")
    if kind is DatabaseFailure.UNREACHABLE:
        return f"Cannot reach {where}: {detail}. Is the server running, and is {setting} right?"
    if kind is DatabaseFailure.CANNOT_OPEN:
        return f"Cannot open {where}: its directory is missing or not writable."
    if kind is DatabaseFailure.READ_ONLY:
        return f"{where} is read-only: {detail}."
    if kind is DatabaseFailure.DISK_FULL:
        return f"{where} is out of disk space: {detail}. Free some space, then re-run."
    if kind is DatabaseFailure.DISCONNECTED:
        return f"Lost the connection to {where}: {detail.rstrip('.')}. Check the server, then re-run."
    if exc.statement is None:
        return f"Cannot connect to {where}: {detail}"
    return f"{where} refused a statement: {detail}"


def _variable(settings: Any, key: str) -> str:
    """The variable to check for setting `key`: the one the user set (PROD_DATABASE_URL), see conf.Settings."""
    variable_for = getattr(settings, "variable_for", None)
    return str(variable_for(key)) if variable_for is not None else key


def _detail(exc: Any) -> str:
    return " ".join(str(getattr(exc, "orig", exc)).split())


def _where(settings: Any, failed_url: Any = None) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(failed_url or settings.DATABASE_URL)
    if url.get_backend_name() == "sqlite":
        return f"SQLite database {url.database or ':memory:'}"
    # A multi-host URL names its servers in the query (?host=h1:5432&host=h2:5432, as SQLAlchemy spells libpq's
    # host list): say them as written, not the default localhost.
    listed = url.query.get("host")
    if listed and not url.host:
        hosts = [listed] if isinstance(listed, str) else list(listed)
        return f"{url.get_backend_name()} server{'s' if len(hosts) > 1 else ''} {', '.join(hosts)}"
    return f"{url.get_backend_name()} server {url.host or 'localhost'}:{url.port or _default_port(url)}"


def _default_port(url: Any) -> int:
    return {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}.get(url.get_backend_name(), 0)


def _url_driver(settings: Any) -> str | None:
    try:
        from sqlalchemy.engine import make_url

        return make_url(settings.DATABASE_URL).drivername
    except Exception:
        return None


def relative_path(path: str) -> str:
    """`path` relative to the project root when it lies inside it."""
    return _relative(path)


def _relative(path: str) -> str:
    from pathlib import Path

    from project.core.conf import project_dir

    try:
        return str(Path(path).resolve().relative_to(project_dir()))
    except ValueError:
        return path


def cause_of(exc: BaseException) -> str:
    """The driver's or Python's own words for `exc`, on one line."""
    from sqlalchemy.exc import DBAPIError

    cause = str(exc.orig) if isinstance(exc, DBAPIError) else f"{type(exc).__name__}: {exc}"
    return " ".join(cause.split())
