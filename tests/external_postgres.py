"""A PostgreSQL server the project did not start: Debian's postgresql-15, as a cluster of its own.

The `external_postgres` fixture runs `initdb` and `pg_ctl` from /usr/lib/postgresql/15/bin
(scripts/bootstrap.sh installs the package; its default cluster is left alone) in a new directory
under the temp dir, on a free port of 127.0.0.1, once per session (by the first test that asks for
it), and stops the server and removes the directory after the last test. As root, the server runs as
Debian's `postgres` user, which owns that directory (pytest's own temp dirs are private to root).

The superuser `postgres` connects through the socket in that directory without a password
(`ExternalPostgres.admin`); every other role connects over TCP with its password, as an operator's
application would (`ExternalPostgres.url`). A test module uses it with

    pytest_plugins = ["external_postgres"]

(a plugin, not an imported fixture: imported into two modules it would be two session fixtures,
starting two servers). Roles belong to the server, so they outlive a module: name them after it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

BIN_DIR = Path("/usr/lib/postgresql/15/bin")
SERVER_USER = "postgres"  # Debian's; PostgreSQL refuses to run as root


@dataclass(frozen=True)
class ExternalPostgres:
    port: int
    socket_dir: Path

    def admin(self, database: str = "postgres") -> psycopg.Connection:
        """A superuser connection in autocommit: set-up a DBA would do."""
        return psycopg.connect(
            host=str(self.socket_dir), port=self.port, user="postgres", dbname=database, autocommit=True,
        )

    def url(self, role: str, password: str, database: str) -> str:
        """`role`'s URL over TCP, as BILLING_WAREHOUSE_URL."""
        return f"postgresql://{role}:{password}@127.0.0.1:{self.port}/{database}"

    def create_owner(self, role: str, password: str, database: str) -> str:
        """A new login `role` (no superuser, no CREATEROLE) owning a new `database`; its URL."""
        role_name, database_name = sql.Identifier(role), sql.Identifier(database)
        with self.admin() as admin:
            admin.execute(sql.SQL("create role {} login password {}").format(role_name, sql.Literal(password)))
            admin.execute(sql.SQL("create database {} owner {}").format(database_name, role_name))
        return self.url(role, password, database)


@pytest.fixture(scope="session")
def external_postgres() -> Iterator[ExternalPostgres]:
    if not (BIN_DIR / "initdb").exists():
        pytest.fail(f"postgresql-15 is missing ({BIN_DIR}): scripts/bootstrap.sh installs it (as root)")
    directory = Path(tempfile.mkdtemp(prefix="external-postgres-"))
    credentials = _credentials()
    if credentials:
        os.chown(directory, credentials["user"], credentials["group"])
    data, log = directory / "data", directory / "server.log"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    try:
        # NOTE: --no-sync and fsync=off: a throwaway cluster needs no durability, and starts faster.
        _run("initdb", "-D", str(data), "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256",
             "--encoding=utf8", "--no-sync")
        options = f"-h 127.0.0.1 -p {port} -k {directory} -c fsync=off"
        _run("pg_ctl", "-D", str(data), "-w", "-o", options, "-l", str(log), "start", log=log)
        try:
            yield ExternalPostgres(port=port, socket_dir=directory)
        finally:
            _run("pg_ctl", "-D", str(data), "-w", "-m", "fast", "stop")
    finally:
        shutil.rmtree(directory)


def _run(program: str, *args: str, log: Path | None = None) -> None:
    """One of the server's programs, as its user; its output (and the server's `log`) is the failure's message."""
    # NOTE: output to a file, not a pipe: the server pg_ctl starts would inherit the pipe and hold it open.
    with tempfile.TemporaryFile("w+") as output:
        completed = subprocess.run([str(BIN_DIR / program), *args], stdout=output, stderr=output, **_credentials())
        if completed.returncode != 0:
            output.seek(0)
            server_log = log.read_text() if log and log.exists() else ""
            pytest.fail(f"{program} failed (exit {completed.returncode}):\n{output.read()}{server_log}")


def _credentials() -> dict:
    """subprocess arguments running as SERVER_USER when root, else nothing."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam(SERVER_USER)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
