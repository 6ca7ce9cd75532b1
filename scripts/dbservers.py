"""Throwaway PostgreSQL and MariaDB servers on loopback, for tests and benchmarks.

Each server gets its own data directory, a free TCP port on 127.0.0.1 and a
random password. Servers are stopped (and their data removed) by `Server.stop()`
or, at the latest, when the Python process exits.

    python scripts/dbservers.py   # start both, print their URLs, wait for Ctrl-C (--help: what it does)
"""

from __future__ import annotations

import atexit
import glob
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import pymysql
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.pool import NullPool

STARTUP_TIMEOUT = 60.0  # seconds until a server must accept logins
STOP_TIMEOUT = 30.0  # seconds of graceful shutdown before SIGKILL
ADMIN_DATABASE = {"postgresql": "postgres", "mysql": "mysql"}
DRIVER = {"postgresql": "postgresql+psycopg2", "mysql": "mysql+pymysql"}
# sun_path is 108 bytes; leave room for the socket file name.
MAX_SOCKET_DIR_LEN = 80

_running: list[Server] = []


@dataclass(eq=False)  # identity semantics: each Server is one running process
class Server:
    kind: str  # "postgresql" or "mysql"
    host: str
    port: int
    user: str
    password: str
    base_dir: Path  # owned by this server; removed by stop()
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log_path: Path | None = field(default=None, repr=False)
    # The signal that shuts the process down fast; None: the kind's usual one.
    stop_signal: signal.Signals | None = field(default=None, repr=False)

    def url(self, database: str) -> str:
        query = {"charset": "utf8mb4"} if self.kind == "mysql" else {}
        return URL.create(
            DRIVER[self.kind],
            username=self.user,
            password=self.password,
            host=self.host,
            port=self.port,
            database=database,
            query=query,
        ).render_as_string(hide_password=False)

    def create_database(self, name: str) -> str:
        """Create an empty database `name` (replacing any old one); return its URL."""
        self.drop_database(name)
        charset = " CHARACTER SET utf8mb4" if self.kind == "mysql" else ""
        self._admin_execute([f"CREATE DATABASE {self._quote(name)}{charset}"])
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop `name` even if clients are still connected to it."""
        if self.kind == "postgresql":
            self._admin_execute([f"DROP DATABASE IF EXISTS {self._quote(name)} WITH (FORCE)"])
            return
        # MariaDB has no FORCE: DROP would wait on metadata locks held by
        # leftover connections, so kill those first.
        kill_sessions = "SELECT id FROM information_schema.processlist WHERE db = :db AND id <> CONNECTION_ID()"
        with self._admin_connection() as conn:
            conn.exec_driver_sql("SET SESSION lock_wait_timeout = 10")
            for (session_id,) in conn.execute(text(kill_sessions), {"db": name}):
                conn.exec_driver_sql(f"KILL {int(session_id)}")
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {self._quote(name)}")

    def stop(self) -> None:
        """Shut down fast and delete the data directory. Idempotent, bounded in time."""
        if self.process is not None:
            default = signal.SIGINT if self.kind == "postgresql" else signal.SIGTERM
            _terminate(self.process, self.stop_signal or default)
            self.process = None
        shutil.rmtree(self.base_dir, ignore_errors=True)
        if self in _running:
            _running.remove(self)

    def _quote(self, name: str) -> str:
        # Names come from our own tests; refuse anything needing real escaping.
        if not re.fullmatch(r"[A-Za-z0-9_]+", name):
            raise ValueError(f"unsupported database name: {name!r}")
        return f"`{name}`" if self.kind == "mysql" else f'"{name}"'

    def _admin_connection(self) -> Connection:
        engine = create_engine(self.url(ADMIN_DATABASE[self.kind]), poolclass=NullPool, isolation_level="AUTOCOMMIT")
        return engine.connect()

    def _admin_execute(self, statements: list[str]) -> None:
        with self._admin_connection() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)


def find_free_port() -> int:
    # The port is free now; there is a small race until the server binds it.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_postgres(base_dir: Path) -> Server:
    return _retry_on_port_clash(lambda: _start_postgres_once(base_dir))


def start_mariadb(base_dir: Path) -> Server:
    return _retry_on_port_clash(lambda: _start_mariadb_once(base_dir))


def each_engine(engines: str, base_dir: Path) -> Iterator[tuple[str, Server | None]]:
    """Each of the comma-separated engines ("sqlite,mysql,postgresql") with a server of its own on loopback, started
    when its turn comes and stopped when it ends (None for SQLite, which needs none): a bench's loop over engines."""
    for engine in engines.split(","):
        server = None
        if engine == "postgresql":
            server = start_postgres(base_dir / engine)
        elif engine == "mysql":
            server = start_mariadb(base_dir / engine)
        try:
            yield engine, server
        finally:
            if server is not None:
                server.stop()


def _retry_on_port_clash(start: Callable[[], Server], attempts: int = 3) -> Server:
    # Another process may grab the free port before the server binds it.
    for attempt in range(attempts):
        try:
            return start()
        except RuntimeError as error:
            if "Address already in use" not in str(error) or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _start_postgres_once(base_dir: Path) -> Server:
    bin_dir = _postgres_bin_dir()
    # PostgreSQL refuses to run as root, so run it as the `postgres` OS user.
    run_as = _ensure_postgres_user() if os.geteuid() == 0 else None
    work_dir = _make_work_dir(base_dir, "postgresql-", run_as)
    data_dir, log_path = work_dir / "data", work_dir / "server.log"
    server = Server("postgresql", "127.0.0.1", find_free_port(), "postgres", _password(), work_dir)
    server.log_path = log_path

    pwfile = work_dir / "pwfile"
    pwfile.write_text(server.password + "\n")
    _chown(pwfile, run_as)
    initdb = [
        str(bin_dir / "initdb"), "-D", str(data_dir), "--username=postgres",
        f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256",
        "-E", "UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions",
    ]  # fmt: skip
    _run(initdb, log_path, run_as)
    pwfile.unlink()

    _launch(server, _postgres_command(bin_dir, data_dir, server.port, work_dir), run_as)
    _wait_until_ready(server, lambda: _postgres_login(server))
    return server


def _postgres_command(bin_dir: Path, data_dir: Path, port: int, work_dir: Path) -> list[str]:
    return [
        str(bin_dir / "postgres"), "-D", str(data_dir), "-p", str(port),
        "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={work_dir}",
        # Durability is pointless for throwaway data; these make DDL much faster.
        "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
    ]  # fmt: skip


def _postgres_login(server: Server) -> None:
    psycopg2.connect(
        host=server.host, port=server.port, user=server.user, password=server.password,
        dbname="postgres", connect_timeout=5,
    ).close()  # fmt: skip


def _start_mariadb_once(base_dir: Path) -> Server:
    mariadbd = _find_binary("mariadbd", "mariadb-server", extra_dirs=["/usr/sbin"])
    install_db = _find_binary("mariadb-install-db", "mariadb-server")
    work_dir = _make_work_dir(base_dir, "mariadb-", None)
    data_dir, log_path = work_dir / "data", work_dir / "server.log"
    socket_path = work_dir / "mysqld.sock"
    server = Server("mysql", "127.0.0.1", find_free_port(), "root", _password(), work_dir)
    server.log_path = log_path

    # mariadbd refuses to run as root unless told to.
    as_root = ["--user=root"] if os.geteuid() == 0 else []
    install = [
        install_db, "--no-defaults", f"--datadir={data_dir}", "--skip-test-db",
        "--skip-name-resolve", "--auth-root-authentication-method=normal", *as_root,
    ]  # fmt: skip
    _run(install, log_path, None)

    command = _mariadb_command(mariadbd, work_dir, data_dir, server.port, as_root)
    _launch(server, command, None)

    def socket_login() -> None:
        # Root has no password yet and can log in over the unix socket.
        pymysql.connect(unix_socket=str(socket_path), user="root", connect_timeout=5).close()

    _wait_until_ready(server, socket_login)
    _secure_mariadb(server, socket_path)
    return server


def _mariadb_command(mariadbd: str, work_dir: Path, data_dir: Path, port: int, as_root: list[str]) -> list[str]:
    return [
        mariadbd, "--no-defaults", f"--datadir={data_dir}", f"--port={port}",
        "--bind-address=127.0.0.1", f"--socket={work_dir / 'mysqld.sock'}",
        f"--pid-file={work_dir / 'mariadbd.pid'}", f"--tmpdir={work_dir}", *as_root,
        # With skip-name-resolve, TCP clients from 127.0.0.1 match host '127.0.0.1'.
        "--skip-name-resolve", "--skip-log-bin",
        "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
        # Durability is pointless for throwaway data.
        "--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0",
        # Native AIO (io_uring/libaio) is often unavailable in containers.
        "--innodb-use-native-aio=0",
    ]  # fmt: skip


def _secure_mariadb(server: Server, socket_path: Path) -> None:
    """Give every root account the password and drop anonymous accounts."""
    conn = pymysql.connect(unix_socket=str(socket_path), user="root", autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT User, Host FROM mysql.user WHERE User = ''")
            for user, host in cur.fetchall():
                cur.execute("DROP USER %s@%s", (user, host))
            for host in ("localhost", "127.0.0.1", "::1"):
                cur.execute("CREATE USER IF NOT EXISTS 'root'@%s", (host,))
                cur.execute("ALTER USER 'root'@%s IDENTIFIED BY %s", (host, server.password))
                cur.execute("GRANT ALL PRIVILEGES ON *.* TO 'root'@%s WITH GRANT OPTION", (host,))
    finally:
        conn.close()

    def tcp_login(password: str) -> None:
        pymysql.connect(host=server.host, port=server.port, user="root", password=password, connect_timeout=5).close()

    tcp_login(server.password)
    try:
        tcp_login(server.password + "-wrong")
    except pymysql.err.OperationalError:
        return
    server.stop()
    raise RuntimeError("MariaDB accepted a wrong root password; refusing to continue")


# --- production topologies: a streaming standby, PgBouncer, a Galera cluster --


def start_postgres_standby(primary: Server, base_dir: Path) -> Server:
    """A hot standby of `primary` (pg_basebackup -R): it refuses writes and replays what the primary commits.

    It shares the primary's users and password; `stop()` it before the primary.
    """
    return _retry_on_port_clash(lambda: _start_standby_once(primary, base_dir))


def _start_standby_once(primary: Server, base_dir: Path) -> Server:
    bin_dir = _postgres_bin_dir()
    run_as = _ensure_postgres_user() if os.geteuid() == 0 else None
    work_dir = _make_work_dir(base_dir, "pg-standby-", run_as)
    data_dir, log_path = work_dir / "data", work_dir / "server.log"
    server = Server("postgresql", "127.0.0.1", find_free_port(), primary.user, primary.password, work_dir)
    server.log_path = log_path
    # initdb's pg_hba.conf already lets the superuser replicate over TCP with its password; -R writes
    # primary_conninfo (password included) and standby.signal, so the copy starts as a streaming standby.
    basebackup = [
        str(bin_dir / "pg_basebackup"), "-h", primary.host, "-p", str(primary.port), "-U", primary.user,
        "-D", str(data_dir), "-R", "-X", "stream", "--checkpoint=fast", "--no-sync",
    ]  # fmt: skip
    _run(basebackup, log_path, run_as, env={"PGPASSWORD": primary.password})
    _launch(server, _postgres_command(bin_dir, data_dir, server.port, work_dir), run_as)
    _wait_until_ready(server, lambda: _postgres_login(server))
    return server


@dataclass(eq=False)
class Pooler(Server):
    """PgBouncer in front of a PostgreSQL server: url() reaches the server's databases through the pool."""

    pool_mode: str = "transaction"
    admin_user: str = "pgbouncer_admin"
    admin_password: str = ""

    def admin_url(self) -> str:
        """The admin console (database `pgbouncer`): SHOW POOLS, SHOW CONFIG..."""
        return URL.create(DRIVER["postgresql"], username=self.admin_user, password=self.admin_password,
                          host=self.host, port=self.port, database="pgbouncer").render_as_string(hide_password=False)

    def create_database(self, name: str) -> str:
        raise NotImplementedError("create the database on the PostgreSQL server behind the pooler")

    def drop_database(self, name: str) -> None:
        raise NotImplementedError("drop the database on the PostgreSQL server behind the pooler")


def start_pgbouncer(upstream: Server, base_dir: Path, pool_mode: str = "transaction") -> Pooler:
    """PgBouncer on a free loopback port, pooling every database of `upstream` for its users.

    Its own ini and auth file (the upstream user and an admin user for the console); it runs as the
    `postgres` OS user when we are root (PgBouncer refuses to run as root).
    """
    return _retry_on_port_clash(lambda: _start_pgbouncer_once(upstream, base_dir, pool_mode))  # type: ignore[return-value]


def _start_pgbouncer_once(upstream: Server, base_dir: Path, pool_mode: str) -> Pooler:
    binary = _find_binary("pgbouncer", "pgbouncer", extra_dirs=["/usr/sbin"])
    run_as = _ensure_postgres_user() if os.geteuid() == 0 else None
    work_dir = _make_work_dir(base_dir, "pgbouncer-", run_as)
    pooler = Pooler("postgresql", "127.0.0.1", find_free_port(), upstream.user, upstream.password, work_dir,
                    log_path=work_dir / "pgbouncer.log", stop_signal=signal.SIGTERM,  # SIGINT waits for clients
                    pool_mode=pool_mode, admin_password=_password())
    auth_file, ini = work_dir / "userlist.txt", work_dir / "pgbouncer.ini"
    # Plain passwords: PgBouncer answers the client's SCRAM and logs in to the server with them.
    auth_file.write_text("".join(f'"{user}" "{password.replace(chr(34), chr(34) * 2)}"\n' for user, password in
                                 ((upstream.user, upstream.password), (pooler.admin_user, pooler.admin_password))))
    auth_file.chmod(0o600)
    ini.write_text(textwrap.dedent(f"""\
        [databases]
        * = host={upstream.host} port={upstream.port}

        [pgbouncer]
        listen_addr = 127.0.0.1
        listen_port = {pooler.port}
        unix_socket_dir =
        auth_type = scram-sha-256
        auth_file = {auth_file}
        admin_users = {pooler.admin_user}
        pool_mode = {pool_mode}
        max_client_conn = 500
        default_pool_size = 20
        ignore_startup_parameters = extra_float_digits,options
        """))
    for path in (auth_file, ini):
        _chown(path, run_as)
    _launch(pooler, [binary, str(ini)], run_as)
    _wait_until_ready(pooler, lambda: _postgres_login(pooler))
    return pooler


@dataclass(eq=False)
class Pgpool(Server):
    """pgpool-II in streaming-replication mode in front of a primary and its standbys: url() reaches their
    databases through it; with load balancing on, it sends each session's reads to one node it picks."""

    def create_database(self, name: str) -> str:
        raise NotImplementedError("create the database on the primary behind pgpool-II")

    def drop_database(self, name: str) -> None:
        raise NotImplementedError("drop the database on the primary behind pgpool-II")


def start_pgpool(primary: Server, standbys: list[Server], base_dir: Path, **settings: str) -> Pgpool:
    """pgpool-II on a free loopback port in front of `primary` (node 0) and `standbys` (nodes 1...), with
    load_balance_mode=on and log_per_node_statement=on (which node ran what: its log). `settings` are
    extra pgpool.conf lines (values as written there, e.g. allow_sql_comments="on").

    It authenticates clients itself (pool_passwd holds the primary's user and password) and logs in to
    every node with them; it runs as the `postgres` OS user when we are root. Stop it before the servers.
    """
    return _retry_on_port_clash(  # type: ignore[return-value]
        lambda: _start_pgpool_once(primary, standbys, base_dir, settings))


def _start_pgpool_once(primary: Server, standbys: list[Server], base_dir: Path, settings: dict[str, str]) -> Pgpool:
    binary = _find_binary("pgpool", "pgpool2", extra_dirs=["/usr/sbin"])
    run_as = _ensure_postgres_user() if os.geteuid() == 0 else None
    work_dir = _make_work_dir(base_dir, "pgpool-", run_as)
    pool = Pgpool("postgresql", "127.0.0.1", find_free_port(), primary.user, primary.password, work_dir,
                  log_path=work_dir / "pgpool.log", stop_signal=signal.SIGINT)  # SIGINT: fast shutdown
    conf, hba, pcp, passwd = (work_dir / name for name in ("pgpool.conf", "pool_hba.conf", "pcp.conf",
                                                          "pool_passwd"))
    # user:TEXT<password> (TEXT: taken as is, never as an md5 or AES hash), with ':' and '\\' escaped.
    escaped = primary.password.replace("\\", "\\\\").replace(":", "\\:")
    passwd.write_text(f"{primary.user}:TEXT{escaped}\n")
    passwd.chmod(0o600)
    hba.write_text("host all all 127.0.0.1/32 scram-sha-256\n")
    pcp.write_text("")
    config = {
        "backend_clustering_mode": "'streaming_replication'",
        "listen_addresses": "'127.0.0.1'", "port": str(pool.port), "socket_dir": f"'{work_dir}'",
        "pcp_listen_addresses": "''", "pcp_port": str(find_free_port()), "pcp_socket_dir": f"'{work_dir}'",
        "pid_file_name": f"'{work_dir / 'pgpool.pid'}'", "logdir": f"'{work_dir}'",
        "enable_pool_hba": "on", "pool_passwd": f"'{passwd}'",
        "num_init_children": "16", "max_pool": "2",
        "load_balance_mode": "on", "log_per_node_statement": "on",
        # pgpool finds the primary with this login; no periodic checks, no failover in a test.
        "sr_check_user": f"'{primary.user}'", "sr_check_password": f"'TEXT{primary.password}'",
        "sr_check_period": "0", "health_check_period": "0", "failover_on_backend_error": "off",
    }
    for i, node in enumerate([primary, *standbys]):
        config |= {f"backend_hostname{i}": f"'{node.host}'", f"backend_port{i}": str(node.port),
                   f"backend_weight{i}": "1", f"backend_flag{i}": "'DISALLOW_TO_FAILOVER'"}
    conf.write_text("".join(f"{name} = {value}\n" for name, value in (config | settings).items()))
    for path in (conf, hba, pcp, passwd):
        _chown(path, run_as)
    # -n: stay in the foreground; -D: forget the node states of an earlier run (there is none).
    _launch(pool, [binary, "-n", "-D", "-f", str(conf), "-a", str(hba), "-F", str(pcp)], run_as)
    _wait_until_ready(pool, lambda: _postgres_login(pool))
    return pool


def start_pgpool_failing_over(primary: Server, standby: Server, base_dir: Path) -> Pgpool:
    """pgpool-II in front of `primary` (node 0) and `standby` (node 1) that fails over by itself: it checks every
    node each second and detaches one that fails a check (or a session: failover_on_backend_error); when that is
    the primary, its failover_command promotes the standby (pg_ctl promote) and pgpool finds the new primary."""
    promote = f"{_postgres_bin_dir() / 'pg_ctl'} promote -D {standby.base_dir / 'data'}"
    password = f"'TEXT{primary.password}'"
    return start_pgpool(primary, [standby], base_dir, **{
        "health_check_period": "1", "health_check_timeout": "2", "health_check_max_retries": "0",
        "health_check_user": f"'{primary.user}'", "health_check_password": password,
        "failover_on_backend_error": "on", "failover_command": f"'test %d = %P && {promote}'",
        "search_primary_node_timeout": "60",
        "backend_flag0": "'ALLOW_TO_FAILOVER'", "backend_flag1": "'ALLOW_TO_FAILOVER'",
    })


GALERA_PROVIDER = "/usr/lib/galera/libgalera_smm.so"


def start_galera_cluster(base_dir: Path, nodes: int = 3) -> list[Server]:
    """A MariaDB Galera cluster of `nodes` nodes on loopback, every node taking writes.

    Each node has its own SQL port, data dir, group-communication (gcomm), IST and SST port. The first
    bootstraps the cluster (--wsrep-new-cluster); the others join it one at a time and receive its data
    by rsync SST, root password included. Stop the nodes in reverse order (`stop_cluster`).
    """
    if not Path(GALERA_PROVIDER).exists():
        raise RuntimeError(f"{GALERA_PROVIDER} not found: install the Debian package 'galera-4'")
    _find_binary("rsync", "rsync")  # the SST method
    mariadbd = _find_binary("mariadbd", "mariadb-server", extra_dirs=["/usr/sbin"])
    gcomm = [find_free_port() for _ in range(nodes)]
    address = "gcomm://" + ",".join(f"127.0.0.1:{port}" for port in gcomm)
    password = _password()
    started: list[Server] = []
    try:
        for index in range(nodes):
            started.append(_start_galera_node(base_dir, mariadbd, index, address, gcomm[index], password))
    except BaseException:
        stop_cluster(started)
        raise
    return started


def stop_cluster(cluster: list[Server]) -> None:
    """Stop the nodes last-joined first, so the cluster shrinks instead of losing its primary component."""
    for node in reversed(cluster):
        node.stop()


def _start_galera_node(base_dir: Path, mariadbd: str, index: int, address: str, gcomm: int, password: str) -> Server:
    # Not as root: the joiner's rsync daemon would drop to `nobody` and could not write the data dir.
    run_as = _ensure_user("mysql") if os.geteuid() == 0 else None
    work_dir = _make_work_dir(base_dir, f"galera{index + 1}-", run_as)
    data_dir, log_path = work_dir / "data", work_dir / "server.log"
    socket_path = work_dir / "mysqld.sock"
    server = Server("mysql", "127.0.0.1", find_free_port(), "root", password, work_dir)
    server.log_path = log_path
    as_root: list[str] = []
    if index == 0:
        install_db = _find_binary("mariadb-install-db", "mariadb-server")
        _run([install_db, "--no-defaults", f"--datadir={data_dir}", "--skip-test-db", "--skip-name-resolve",
              "--auth-root-authentication-method=normal"], log_path, run_as)
    else:
        data_dir.mkdir()  # filled by the SST from a running node
        _chown(data_dir, run_as)
    ist, sst = find_free_port(), find_free_port()
    command = [
        *_mariadb_command(mariadbd, work_dir, data_dir, server.port, as_root),
        "--wsrep-on=ON", f"--wsrep-provider={GALERA_PROVIDER}", "--wsrep-cluster-name=fastapi-manage-test",
        f"--wsrep-cluster-address={address}", f"--wsrep-node-name=node{index + 1}",
        f"--wsrep-node-address=127.0.0.1:{gcomm}", f"--wsrep-node-incoming-address=127.0.0.1:{server.port}",
        f"--wsrep-provider-options=gmcast.listen_addr=tcp://127.0.0.1:{gcomm};ist.recv_addr=127.0.0.1:{ist};"
        "gcache.size=16M",
        f"--wsrep-sst-receive-address=127.0.0.1:{sst}", "--wsrep-sst-method=rsync",
        # What Galera requires of every node.
        "--binlog-format=ROW", "--default-storage-engine=InnoDB", "--innodb-autoinc-lock-mode=2",
        *(["--wsrep-new-cluster"] if index == 0 else []),
    ]  # fmt: skip
    _launch(server, command, run_as)
    if index == 0:
        _wait_until_ready(server, lambda: pymysql.connect(unix_socket=str(socket_path), user="root",
                                                          connect_timeout=5).close())
        _secure_mariadb(server, socket_path)

    def synced() -> None:
        conn = pymysql.connect(host=server.host, port=server.port, user="root", password=password, connect_timeout=5)
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW STATUS WHERE Variable_name IN ('wsrep_local_state_comment', 'wsrep_cluster_size')")
                status = dict(cur.fetchall())
        finally:
            conn.close()
        if status.get("wsrep_local_state_comment") != "Synced" or int(status.get("wsrep_cluster_size", 0)) <= index:
            raise RuntimeError(f"not synced yet: {status}")

    _wait_until_ready(server, synced)
    return server


# --- helpers -----------------------------------------------------------------


def _password() -> str:
    # Includes URL-special characters so quoting bugs show up in tests.
    return secrets.token_urlsafe(12) + "@/%:"


def _find_binary(name: str, package: str, extra_dirs: list[str] | None = None) -> str:
    for directory in extra_dirs or []:
        candidate = Path(directory) / name
        if os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: install the Debian package '{package}'")
    return found


def _postgres_bin_dir() -> Path:
    def version(path: str) -> float:
        try:
            return float(Path(path).parent.parent.name)
        except ValueError:
            return 0.0

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    if candidates:
        return Path(candidates[-1]).parent
    return Path(_find_binary("initdb", "postgresql")).parent


def _ensure_postgres_user() -> str:
    return _ensure_user("postgres")


def _ensure_user(name: str) -> str:
    if subprocess.run(["id", "-u", name], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", name], check=True)
    return name


def _make_work_dir(base_dir: Path, prefix: str, owner: str | None) -> Path:
    """Create the server's private directory, normally inside `base_dir`.

    Falls back to the system temp dir when `owner` cannot reach `base_dir`
    (pytest's tmp dirs are 0700 root) or when the socket path would be too long.
    """
    base_dir.mkdir(parents=True, exist_ok=True)
    usable = len(str(base_dir)) < MAX_SOCKET_DIR_LEN and (owner is None or _can_enter(base_dir, owner))
    work_dir = Path(tempfile.mkdtemp(prefix=prefix, dir=base_dir if usable else None))
    _chown(work_dir, owner)
    return work_dir


def _can_enter(directory: Path, user: str) -> bool:
    check = ["test", "-x", str(directory)]
    return subprocess.run(check, user=user, capture_output=True).returncode == 0


def _chown(path: Path, owner: str | None) -> None:
    if owner is not None:
        shutil.chown(path, owner, owner)


def _user_kwargs(run_as: str | None) -> dict[str, object]:
    # extra_groups=[] drops root's supplementary groups in the child.
    return {} if run_as is None else {"user": run_as, "group": run_as, "extra_groups": []}


def _run(command: list[str], log_path: Path, run_as: str | None, env: dict[str, str] | None = None) -> None:
    with log_path.open("ab") as log:
        result = subprocess.run(  # type: ignore[call-overload]
            command, stdout=log, stderr=subprocess.STDOUT, timeout=STARTUP_TIMEOUT,
            env=None if env is None else {**os.environ, **env}, **_user_kwargs(run_as),
        )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"{Path(command[0]).name} failed:\n{_log_tail(log_path)}")


def _launch(server: Server, command: list[str], run_as: str | None, cwd: Path | None = None) -> None:
    assert server.log_path is not None
    with server.log_path.open("ab") as log:
        # A new session keeps terminal Ctrl-C away from the server and lets us
        # kill its whole process group as a last resort.
        server.process = subprocess.Popen(  # type: ignore[call-overload]
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=cwd, **_user_kwargs(run_as),
        )  # fmt: skip
    _running.append(server)


def _wait_until_ready(server: Server, login: Callable[[], None]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        try:
            login()
            return
        except Exception as error:  # any failure means "not yet"
            last_error = error
        assert server.process is not None
        if server.process.poll() is not None:
            reason = f"exited with code {server.process.returncode}"
        elif time.monotonic() > deadline:
            reason = f"did not accept logins within {STARTUP_TIMEOUT:.0f}s ({last_error})"
        else:
            time.sleep(0.1)
            continue
        tail = _log_tail(server.log_path)
        server.stop()
        raise RuntimeError(f"{server.kind} server on port {server.port} {reason}:\n{tail}")


def _terminate(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Ask the server to shut down; SIGKILL its process group if it takes too long."""
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        # The group id is still valid because the leader is not yet reaped;
        # killing the group also takes out worker processes (postgres backends).
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)


def _log_tail(log_path: Path | None, lines: int = 30) -> str:
    if log_path is None or not log_path.exists():
        return "(no log)"
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])


@atexit.register
def _stop_all() -> None:
    for server in list(_running):
        server.stop()


def main(argv: list[str] | None = None) -> None:
    import argparse

    # Parsed before anything starts: `--help` prints this and exits, it starts no server.
    argparse.ArgumentParser(
        description="Start throwaway PostgreSQL and MariaDB servers on 127.0.0.1, print their URLs "
                    "(POSTGRES_URL=..., MYSQL_URL=..., one per line, each as soon as its server accepts logins), "
                    "and keep them until Ctrl-C or SIGTERM, which stops them and deletes their data.",
    ).parse_args(argv)
    # Each URL line reaches a pipe as soon as it is printed (a reader waits for it while the servers run).
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    base_dir = Path(tempfile.mkdtemp(prefix="dbservers-"))
    base_dir.chmod(0o711)  # let the postgres OS user reach its directory inside
    # Turn SIGTERM into a normal exit so the finally block runs; restore Ctrl-C,
    # which shells ignore for background jobs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        pg = start_postgres(base_dir)
        print(f"POSTGRES_URL={pg.url('postgres')}", flush=True)
        mysql = start_mariadb(base_dir)
        print(f"MYSQL_URL={mysql.url('mysql')}", flush=True)
        print("Servers running; press Ctrl-C to stop.", file=sys.stderr, flush=True)
        while True:
            signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        _stop_all()
        shutil.rmtree(base_dir, ignore_errors=True)



# --- crashes: kill a server, start it again on the same data directory and port ------------------------------


def kill_server(server: Server) -> None:
    """What a crashed host does: the server's process group (PostgreSQL's postmaster and every backend) SIGKILLed
    at once. Its data directory stays, for restart_server."""
    assert server.process is not None, "the server is not running"
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait()


def restart_server(server: Server) -> None:
    """Start a killed server again with the same command (data directory, port), and wait until it takes logins:
    PostgreSQL recovers from its WAL first, so committed transactions are back and the rest is gone."""
    assert server.process is not None and server.process.poll() is not None, "kill the server first"
    command = [str(arg) for arg in server.process.args]  # type: ignore[union-attr]
    if server in _running:
        _running.remove(server)
    run_as = _ensure_postgres_user() if server.kind == "postgresql" and os.geteuid() == 0 else None
    _launch(server, command, run_as)

    def tcp_login() -> None:
        if server.kind == "postgresql":
            _postgres_login(server)
        else:
            pymysql.connect(host=server.host, port=server.port, user=server.user, password=server.password,
                            connect_timeout=5).close()

    _wait_until_ready(server, tcp_login)


# --- a Patroni cluster: etcd, two PostgreSQL nodes with automatic failover, HAProxy in front ----------------

PATRONI_SCOPE = "fastapi-manage-test"
# The fastest failover Patroni's rules allow (loop_wait + 2 * retry_timeout <= ttl): the leader key lives `ttl`
# seconds after its holder stops renewing it. retry_timeout has room for a busy machine: a primary whose DCS or
# PostgreSQL calls take longer than that demotes itself.
PATRONI_TIMING = {"ttl": 20, "loop_wait": 1, "retry_timeout": 5}
# A standby further behind the leader's last reported WAL position than maximum_lag_on_failover (default 1 MB)
# refuses to take over. A test's CREATE DATABASE writes its template to the WAL (several MB, PostgreSQL 15's
# WAL_LOG strategy): killed right after it, the primary left no node willing to be promoted (seen in a clean-clone
# run). The tests want the failover, commits lost in it included (that is what they check): no bound here.
PATRONI_MAX_LAG = 1 << 40


@dataclass(eq=False)
class PatroniNode:
    name: str
    pg_port: int
    rest_port: int
    work_dir: Path
    config_path: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.work_dir / "data"

    def role(self) -> int:
        """The HTTP status of Patroni's `GET /primary` on this node (200: it runs the writable primary), 0 when
        its REST API does not answer."""
        return self.status("/primary")

    def status(self, path: str) -> int:
        """The HTTP status of Patroni's REST `GET path` on this node (e.g. /replica: 200 when it runs as a replica
        in state running), 0 when its REST API does not answer."""
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.rest_port}{path}", timeout=2) as answer:
                return answer.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            return 0

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None


@dataclass(eq=False)
class PatroniCluster:
    """etcd (one member), Patroni nodes and HAProxy on loopback. `url()` reaches the primary through HAProxy,
    `multi_host_url()` through libpq's host list with target_session_attrs=read-write."""

    nodes: list[PatroniNode]
    haproxy: Server  # kind postgresql: its url() is the primary through HAProxy
    etcd: subprocess.Popen[bytes]
    etcd_port: int
    base_dir: Path
    run_as: str | None
    killed: list[PatroniNode] = field(default_factory=list)

    @property
    def user(self) -> str:
        return self.haproxy.user

    @property
    def password(self) -> str:
        return self.haproxy.password

    def url(self, database: str) -> str:
        return self.haproxy.url(database)

    def multi_host_url(self, database: str) -> str:
        """libpq's multi-host URL: each node's address as a `host` query parameter, and
        target_session_attrs=read-write (the client tries them in turn until one takes writes)."""
        return URL.create(
            DRIVER["postgresql"], username=self.user, password=self.password, database=database,
            query={"host": [f"127.0.0.1:{node.pg_port}" for node in self.nodes],
                   "target_session_attrs": "read-write", "connect_timeout": "3"},
        ).render_as_string(hide_password=False)

    def node_url(self, node: PatroniNode, database: str) -> str:
        return URL.create(DRIVER["postgresql"], username=self.user, password=self.password, host="127.0.0.1",
                          port=node.pg_port, database=database).render_as_string(hide_password=False)

    def primary(self) -> PatroniNode | None:
        for node in self.nodes:
            if node not in self.killed and node.role() == 200:
                return node
        return None

    def create_database(self, name: str) -> str:
        """Create `name` on the primary (replacing any old one); return its URL through HAProxy."""
        self.drop_database(name)
        self._admin_execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_]+", name):
            raise ValueError(f"unsupported database name: {name!r}")
        self._admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _admin_execute(self, statement: str) -> None:
        engine = create_engine(self.url("postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(statement)
        finally:
            engine.dispose()

    def kill_primary(self) -> PatroniNode:
        """What a crashed host does to the primary: SIGKILL its Patroni and its postmaster with every backend
        (Patroni starts PostgreSQL detached, in a process group of its own). Returns the killed node."""
        node = self.primary()
        if node is None:
            raise RuntimeError("no primary to kill")
        pid = node.postmaster_pid()
        assert node.process is not None
        node.process.kill()
        node.process.wait()
        if pid is not None:
            _kill_postmaster(pid)
        self.killed.append(node)
        return node

    def expire_leader(self) -> None:
        """Delete the leader key in etcd, as its ttl running out would a little later: the standby's Patroni
        takes over at its next loop instead of `ttl` seconds after the kill (tests: they check what migrate
        does across a failover, not how fast Patroni notices one; bench/ measures the real wait)."""
        import base64
        import json
        import urllib.request

        key = base64.b64encode(f"/service/{PATRONI_SCOPE}/leader".encode()).decode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.etcd_port}/v3/kv/deleterange",
                                         data=json.dumps({"key": key}).encode(), method="POST")
        urllib.request.urlopen(request, timeout=5).close()

    def wait_for_primary(self, timeout: float = 90.0) -> PatroniNode:
        """Wait until a node that was not killed is the primary and takes writes through HAProxy."""
        deadline = time.monotonic() + timeout
        while True:
            node = self.primary()
            if node is not None:
                try:
                    self._admin_execute("SELECT 1 WHERE NOT pg_is_in_recovery()")
                    with psycopg2.connect(host="127.0.0.1", port=self.haproxy.port, user=self.user,
                                          password=self.password, dbname="postgres", connect_timeout=3) as conn:
                        with conn.cursor() as cur:
                            cur.execute("SELECT pg_is_in_recovery()")
                            if cur.fetchone() == (False,):
                                return node
                except Exception:  # not yet: HAProxy still routes to no node, or to the old one
                    pass
            if time.monotonic() > deadline:
                logs = "\n".join(f"{n.name}:\n{_log_tail(n.log_path, 40)}" for n in self.nodes)
                raise RuntimeError(f"no writable primary within {timeout:.0f}s:\n{logs}")
            time.sleep(0.2)

    def heal(self, wait: bool = True) -> None:
        """Start the killed nodes' Patroni again: each rejoins as a streaming standby of the new primary
        (pg_rewind, or a fresh copy when its timeline diverged). `wait`: until every node streams (else call
        wait_for_standbys before the next kill)."""
        for node in self.killed:
            _launch_patroni(node, self.run_as)
        self.killed.clear()
        if wait:
            self.wait_for_standbys()

    def wait_for_standbys(self, timeout: float = 120.0) -> None:
        """Wait until every other node is a standby that could be promoted now without losing what the primary had
        written when the wait began: a kill after it loses only what comes later (a test's CREATE DATABASE just
        before is kept). Each standby must

        - stream from the primary, as the primary's pg_stat_replication says (a node that was killed and is
          rejoining runs as a replica on its old timeline first, until pg_rewind or a new copy puts it on the
          primary's: it does not stream then);
        - accept connections itself, its WAL receiver streaming, replayed that position (a node just rewound
          streams before it reaches a consistent recovery state, the end of WAL pg_rewind copied: killed then, the
          primary leaves a standby that can never be promoted, seen in a run of the suite);
        - be a replica in state running for its Patroni (GET /replica): one still "starting" is not healthy enough
          for the leader race.

        A rewind that fails, or a timeline that diverged, is Patroni's to mend (remove_data_directory_on_* in
        _patroni_node: it copies the node afresh); a node still not there after `timeout` fails the wait with its
        log. Each standby that was not ready at once says on stderr how long it took (a failed test shows it)."""
        deadline = time.monotonic() + timeout
        began = time.monotonic()
        primary = self.wait_for_primary(timeout)
        written = self._lsn(primary, "pg_current_wal_lsn()")
        standbys = [node for node in self.nodes if node is not primary and node not in self.killed]
        first = True
        while standbys:
            for node in list(standbys):
                if self._promotable(primary, node, written):
                    standbys.remove(node)
                    if not first:
                        print(f"dbservers: {node.name} ready to take over from {primary.name} after "
                              f"{time.monotonic() - began:.1f}s", file=sys.stderr)
            first = False
            if not standbys:
                return
            if time.monotonic() > deadline:
                logs = "\n".join(f"{n.name}:\n{_log_tail(n.log_path, 30)}" for n in standbys)
                raise RuntimeError(f"no standby ready to take over from {primary.name} at {written} after "
                                   f"{timeout:.0f}s:\n{logs}")
            time.sleep(0.2)

    def _promotable(self, primary: PatroniNode, node: PatroniNode, written: object) -> bool:
        try:
            streaming = self._lsn(primary, "count(*) FROM pg_stat_replication WHERE state = 'streaming' AND "
                                           f"application_name = '{node.name}'")
            # Asked of the standby: the primary's replay_lsn is what the standby last reported, up to
            # wal_receiver_status_interval (10 s) old when nothing is written.
            replayed = self._lsn(node, f"pg_last_wal_replay_lsn() >= '{written}'::pg_lsn AND EXISTS (SELECT FROM "
                                       "pg_stat_wal_receiver WHERE status = 'streaming')")
        except psycopg2.OperationalError:  # the standby refuses connections: not consistent yet
            return False
        return streaming == 1 and replayed is True and node.status("/replica") == 200

    def _lsn(self, node: PatroniNode, expression: str) -> object:
        """SELECT `expression` on `node` itself (not through HAProxy)."""
        conn = psycopg2.connect(host="127.0.0.1", port=node.pg_port, user=self.user, password=self.password,
                                dbname="postgres", connect_timeout=3)
        try:
            with conn.cursor() as cur:
                cur.execute(f"SELECT {expression}")
                return cur.fetchone()[0]
        finally:
            conn.close()

    def stop(self) -> None:
        """Stop HAProxy, every Patroni node (and its PostgreSQL), then etcd; delete their data. Idempotent."""
        self.haproxy.stop()
        for node in self.nodes:
            pid = node.postmaster_pid()
            if node.process is not None:
                _terminate(node.process, signal.SIGTERM)  # Patroni stops its PostgreSQL, then exits
                node.process = None
            if pid is not None:
                _kill_postmaster(pid)  # left behind by a killed Patroni, or by one that hung
        _terminate(self.etcd, signal.SIGTERM)
        shutil.rmtree(self.base_dir, ignore_errors=True)
        if self in _patroni_clusters:
            _patroni_clusters.remove(self)


_patroni_clusters: list[PatroniCluster] = []


def start_patroni_cluster(base_dir: Path, nodes: int = 2) -> PatroniCluster:
    """etcd, `nodes` Patroni nodes with asynchronous streaming replication, and HAProxy routing to the node whose
    Patroni answers `GET /primary` with 200, all on free loopback ports in throwaway directories. Patroni and
    HAProxy run as the `postgres` OS user when we are root. Returns once the first node is the primary, the
    others stream from it and HAProxy reaches the primary. A missing binary raises (never skips)."""
    patroni = _find_binary("patroni", "patroni")
    etcd = _find_binary("etcd", "etcd-server", extra_dirs=["/usr/bin"])
    haproxy = _find_binary("haproxy", "haproxy", extra_dirs=["/usr/sbin"])
    run_as = _ensure_postgres_user() if os.geteuid() == 0 else None
    cluster_dir = _make_work_dir(base_dir, "patroni-", run_as)
    password = _password()
    etcd_process, etcd_port = _start_etcd(etcd, cluster_dir)
    members = [_patroni_node(patroni, cluster_dir, f"node{i + 1}", etcd_port, password, run_as)
               for i in range(nodes)]
    proxy = Server("postgresql", "127.0.0.1", find_free_port(), "postgres", password,
                   _make_work_dir(cluster_dir, "haproxy-", run_as), stop_signal=signal.SIGTERM)
    cluster = PatroniCluster(members, proxy, etcd_process, etcd_port, cluster_dir, run_as)
    _patroni_clusters.append(cluster)
    try:
        _launch_patroni(members[0], run_as)  # the first bootstraps (initdb) and takes the leader key
        _wait_for(lambda: members[0].role() == 200, 90, f"{members[0].name} becoming the primary",
                  members[0].log_path)
        for node in members[1:]:
            _launch_patroni(node, run_as)  # a copy of the primary (pg_basebackup), then streaming
        _start_haproxy(haproxy, proxy, members, run_as)
        cluster.wait_for_standbys()
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _start_etcd(binary: str, cluster_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    client, peer = find_free_port(), find_free_port()
    log_path = cluster_dir / "etcd.log"
    command = [
        binary, "--name", "etcd1", "--data-dir", str(cluster_dir / "etcd"),
        "--listen-client-urls", f"http://127.0.0.1:{client}", "--advertise-client-urls", f"http://127.0.0.1:{client}",
        "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
        "--initial-cluster", f"etcd1=http://127.0.0.1:{peer}", "--initial-cluster-state", "new",
        "--unsafe-no-fsync",  # throwaway data
    ]  # fmt: skip
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)

    def healthy() -> bool:
        import urllib.request

        if process.poll() is not None:
            raise RuntimeError(f"etcd exited with code {process.returncode}:\n{_log_tail(log_path)}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{client}/health", timeout=2) as answer:
                return b'"true"' in answer.read()
        except OSError:
            return False

    try:
        _wait_for(healthy, STARTUP_TIMEOUT, "etcd answering", log_path)
    except BaseException:
        _terminate(process, signal.SIGTERM)
        raise
    return process, client


def _patroni_node(binary: str, cluster_dir: Path, name: str, etcd_port: int, password: str,
                  run_as: str | None) -> PatroniNode:
    import json

    work_dir = _make_work_dir(cluster_dir, f"{name}-", run_as)
    node = PatroniNode(name, find_free_port(), find_free_port(), work_dir, work_dir / "patroni.yml",
                       work_dir / "patroni.log")
    hba = ["local all all trust", "host all all 127.0.0.1/32 scram-sha-256",
           "host replication replicator 127.0.0.1/32 scram-sha-256"]
    config = {  # JSON is YAML: Patroni reads this as its YAML configuration
        "scope": PATRONI_SCOPE, "name": name,
        "restapi": {"listen": f"127.0.0.1:{node.rest_port}", "connect_address": f"127.0.0.1:{node.rest_port}"},
        "etcd3": {"hosts": [f"127.0.0.1:{etcd_port}"]},
        "bootstrap": {
            "dcs": {**PATRONI_TIMING, "maximum_lag_on_failover": PATRONI_MAX_LAG,
                    "postgresql": {"use_pg_rewind": True, "use_slots": True, "parameters": {
                "wal_log_hints": "on", "max_wal_senders": 5, "max_replication_slots": 5, "wal_keep_size": "64MB",
            }}},
            "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "no-sync"],
        },
        "postgresql": {
            "listen": f"127.0.0.1:{node.pg_port}", "connect_address": f"127.0.0.1:{node.pg_port}",
            "data_dir": str(node.data_dir), "bin_dir": str(_postgres_bin_dir()), "pgpass": str(work_dir / "pgpass"),
            "pg_hba": hba,
            # A node copied again (bootstrap from the leader) asks for a checkpoint now, not at the next timed one.
            "basebackup": [{"checkpoint": "fast"}, "no-sync"],
            "authentication": {"superuser": {"username": "postgres", "password": password},
                               "replication": {"username": "replicator", "password": password},
                               "rewind": {"username": "postgres", "password": password}},
            # A node that cannot rewind after a failover (its timeline diverged) is copied again.
            "remove_data_directory_on_rewind_failure": True, "remove_data_directory_on_diverged_timelines": True,
            "parameters": {
                "unix_socket_directories": str(work_dir),
                # Local durability as a production primary has it (a commit's WAL is written before the client
                # hears of it, and so survives a killed postmaster); fsync is pointless for throwaway data.
                # full_page_writes stays on: pg_rewind needs it.
                "fsync": "off", "synchronous_commit": "on",
            },
        },
        "tags": {"nofailover": False, "noloadbalance": False},
    }
    node.config_path.write_text(json.dumps(config, indent=1))
    node.config_path.chmod(0o600)
    _chown(node.config_path, run_as)
    return node


def _launch_patroni(node: PatroniNode, run_as: str | None) -> None:
    binary = _find_binary("patroni", "patroni")
    with node.log_path.open("ab") as log:
        node.process = subprocess.Popen(  # type: ignore[call-overload]
            [binary, str(node.config_path)], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=node.work_dir, **_user_kwargs(run_as),
            # Patroni's lines reach the log as they are written, in order with PostgreSQL's, even from a Patroni
            # that is SIGKILLed (block-buffered otherwise: lost with it).
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    _chown(node.log_path, run_as)


def _start_haproxy(binary: str, proxy: Server, nodes: list[PatroniNode], run_as: str | None) -> None:
    """HAProxy in TCP mode: each node's PostgreSQL port, checked every 250 ms by an HTTP GET /primary on its
    Patroni REST port; only the node answering 200 takes connections, and the sessions of a node marked down are
    cut (as the connection to a dead primary would be)."""
    config = proxy.base_dir / "haproxy.cfg"
    servers = "\n".join(
        f"    server {node.name} 127.0.0.1:{node.pg_port} maxconn 100 check port {node.rest_port}"
        for node in nodes)
    config.write_text(textwrap.dedent("""\
        global
            maxconn 200
        defaults
            mode tcp
            timeout connect 3s
            timeout client 30m
            timeout server 30m
            timeout check 2s
        listen primary
            bind 127.0.0.1:{port}
            option httpchk
            http-check send meth GET uri /primary
            http-check expect status 200
            default-server inter 250ms fall 2 rise 1 on-marked-down shutdown-sessions
        """).format(port=proxy.port) + servers + "\n")
    _chown(config, run_as)
    proxy.log_path = proxy.base_dir / "haproxy.log"
    # -db: foreground, no daemon. Its own directory as cwd: HAProxy changes back to the directory it started in
    # after reading its configuration, which fails for the postgres user in a directory only root may enter.
    _launch(proxy, [binary, "-db", "-f", str(config)], run_as, cwd=proxy.base_dir)
    _wait_until_ready(proxy, lambda: _postgres_login(proxy))


def _kill_postmaster(pid: int) -> None:
    """SIGKILL a postmaster and every process of its group (its backends and auxiliary processes)."""
    try:
        group = os.getpgid(pid)
    except ProcessLookupError:
        return
    if group == pid:
        os.killpg(group, signal.SIGKILL)
    else:  # not a group leader: the postmaster, then its children
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        for target in [pid, *map(int, children)]:
            try:
                os.kill(target, signal.SIGKILL)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + STOP_TIMEOUT
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (its parent, Patroni's detaching child, is gone: init reaps it) is dead for our purpose.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _wait_for(check: Callable[[], bool], timeout: float, what: str, log_path: Path | None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout:.0f}s:\n{_log_tail(log_path)}")
        time.sleep(0.1)


@atexit.register
def _stop_patroni_clusters() -> None:
    for cluster in list(_patroni_clusters):
        cluster.stop()


if __name__ == "__main__":
    main()
