from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from project.core.management.base import BaseCommand, CommandError, CommandParser

# client programs to look for, in order, and the Debian package that provides them
CLIENTS = {
    "sqlite": (["sqlite3"], "sqlite3"),
    "mysql": (["mariadb", "mysql"], "mariadb-client"),
    "postgresql": (["psql"], "postgresql-client"),
}
# libpq reads these from the environment; URL query options map onto them
PG_QUERY_ENV = {"sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT",
                "sslkey": "PGSSLKEY", "application_name": "PGAPPNAME"}


class Command(BaseCommand):
    help = (
        "Open the database's own command-line client (sqlite3, mariadb/mysql or psql) on the selected\n"
        "database. Arguments after -- go to the client, e.g. `dbshell -- -c 'SELECT 1'` for psql.\n"
        "The password goes through the environment or a private temporary file, never the command line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("parameters", nargs="*", help="Extra arguments for the client (put them after --).")

    def handle(self, *args: Any, **options: Any) -> None:
        from sqlalchemy.engine import make_url

        with client_command(make_url(self.settings.DATABASE_URL), options["parameters"]) as client:
            returncode = run_client(client)
        if returncode:
            # Keep the client's status for scripts; its own output has already said what went wrong.
            name = os.path.basename(client.args[0])
            raise CommandError(f"{name} exited with status {returncode}.", returncode=returncode)


@dataclass
class ClientCommand:
    """The client's argv and the extra environment; `args` never holds the password."""

    args: list[str]
    env: dict[str, str] = field(default_factory=dict)


def find_client(backend: str) -> str:
    names, package = CLIENTS[backend]
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise CommandError(
        f"You appear not to have the '{names[0]}' program installed or on your PATH: "
        f"install the Debian package {package} (apt install {package})."
    )


@contextmanager
def client_command(url: Any, parameters: list[str] | tuple[str, ...] = ()) -> Iterator[ClientCommand]:
    """The client invocation for a SQLAlchemy URL. Temporary files live as long as the block."""
    backend = "mysql" if url.get_backend_name() in {"mysql", "mariadb"} else url.get_backend_name()
    if backend not in CLIENTS:
        raise CommandError(f"dbshell does not know a client for the {backend} dialect.")
    program = find_client(backend)
    if backend == "sqlite":
        database = url.database or ""
        yield ClientCommand([program, *([database] if database and database != ":memory:" else []), *parameters])
    elif backend == "postgresql":
        yield _psql(program, url, list(parameters))
    else:
        with _mysql(program, url, list(parameters)) as client:
            yield client


def _psql(program: str, url: Any, parameters: list[str]) -> ClientCommand:
    args = [program]
    if url.username:
        args += ["-U", url.username]
    if url.host:
        args += ["-h", url.host]
    if url.port:
        args += ["-p", str(url.port)]
    env = {var: str(url.query[key]) for key, var in PG_QUERY_ENV.items() if key in url.query}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return ClientCommand([*args, *parameters, url.database or "postgres"], env)


@contextmanager
def _mysql(program: str, url: Any, parameters: list[str]) -> Iterator[ClientCommand]:
    options: list[str] = []
    if url.username:
        options.append(f"--user={url.username}")
    if url.host:
        options.append(f"--host={url.host}")
    if url.port:
        options.append(f"--port={url.port}")
    if "unix_socket" in url.query:
        options.append(f"--socket={url.query['unix_socket']}")
    if "charset" in url.query:
        options.append(f"--default-character-set={url.query['charset']}")
    database = [url.database] if url.database else []
    password = url.password
    if not password:
        yield ClientCommand([program, *options, *parameters, *database])
        return
    value = _option_file_value(str(password))
    if value is None:
        # Both quote characters in the password: no option file syntax holds it, the environment does.
        yield ClientCommand([program, *options, *parameters, *database], {"MYSQL_PWD": str(password)})
        return
    # mkstemp creates the file with mode 0600: readable by this user only.
    fd, path = tempfile.mkstemp(prefix="dbshell-", suffix=".cnf")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(f"[client]\npassword={value}\n")
        # --defaults-extra-file must come first on the client's command line.
        yield ClientCommand([program, f"--defaults-extra-file={path}", *options, *parameters, *database])
    finally:
        os.unlink(path)


def _option_file_value(password: str) -> str | None:
    """The password quoted for a MySQL option file, or None when it cannot be written there."""
    escaped = password.replace("\\", "\\\\")
    if '"' not in password:
        return f'"{escaped}"'
    if "'" not in password:
        return f"'{escaped}'"
    return None


def run_client(client: ClientCommand) -> int:
    """Run the client in the foreground and return its exit status (128+N if killed by signal N)."""
    # Ctrl-C belongs to the client (psql cancels the running query); don't let it kill us, or the
    # temporary option file would outlive the session.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        returncode = subprocess.run(
            client.args, env={**os.environ, **client.env}, preexec_fn=_default_sigint
        ).returncode
    finally:
        signal.signal(signal.SIGINT, previous)
    return 128 - returncode if returncode < 0 else returncode


def _default_sigint() -> None:
    # An ignored signal stays ignored across exec: give the client the default back.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
