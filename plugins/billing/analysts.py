"""The read-only analyst role: SELECT on the marts in `billing_marts` and nothing else.

`billing init` creates the role `billing_analyst` (no login) and grants it USAGE on the schema and
SELECT on every relation in it, now and later: dbt, which connects as the same user as init,
replaces a mart's view or table on each build, and the default privileges grant the new relation
again. The marts are views owned by that user, so they read `billing.*` and the staging views with
its privileges; the role itself reads no raw, staging or billing table, and writes nothing.

`billing analyst add NAME` creates a login in the role with a generated password. Roles belong to
the PostgreSQL server, not to one database: the role and its logins are shared by every warehouse
database on the server, their grants are per database.
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import quote

import psycopg
from psycopg import sql

from billing.warehouse import connect, connection_parts

ANALYST_ROLE = "billing_analyst"
MARTS_SCHEMA = "billing_marts"
NAME_PATTERN = re.compile(r"[a-z_][a-z0-9_]{0,62}")

GRANTS_SQL = f"""
do $$
begin
    if not exists (select from pg_roles where rolname = '{ANALYST_ROLE}') then
        create role {ANALYST_ROLE} nologin;
    end if;
end
$$;
create schema if not exists {MARTS_SCHEMA};
grant usage on schema {MARTS_SCHEMA} to {ANALYST_ROLE};
grant select on all tables in schema {MARTS_SCHEMA} to {ANALYST_ROLE};
alter default privileges in schema {MARTS_SCHEMA} grant select on tables to {ANALYST_ROLE};
"""


class AnalystError(Exception):
    """A login that cannot be created or rotated; the message says why."""


def grant_analyst_role(connection: psycopg.Connection) -> None:
    """Create the analyst role if missing and grant it the marts, present and future (in init's transaction).

    Creating the role needs CREATEROLE, which init checks first (billing.schema); an administrator
    may create the role beforehand instead.
    """
    connection.execute(GRANTS_SQL)


def add_analyst(name: str, *, rotate: bool = False) -> str:
    """Create login `name` in the analyst role with a new password; its connection URL.

    An existing analyst login is refused unless `rotate`, which gives it a new password. A role
    that exists but is not an analyst (the superuser, an application's role) is never touched.
    """
    if not NAME_PATTERN.fullmatch(name):
        raise AnalystError(f"'{name}' is not a valid login name: lower-case letters, digits and _, at most 63")
    password = secrets.token_urlsafe(24)
    with connect() as connection:
        connection.execute("select pg_advisory_xact_lock(hashtext('billing analyst add'))")
        if not connection.execute("select 1 from pg_roles where rolname = %s", (ANALYST_ROLE,)).fetchone():
            raise AnalystError(f"role {ANALYST_ROLE} does not exist: run `billing init` first")
        exists, is_analyst = connection.execute(
            "select true, rolcanlogin and not rolsuper and rolname != %(role)s and pg_has_role(oid, %(role)s, 'member')"
            " from pg_roles where rolname = %(name)s",
            {"role": ANALYST_ROLE, "name": name},
        ).fetchone() or (False, False)
        if exists and not is_analyst:
            raise AnalystError(f"role '{name}' exists and is not an analyst login; choose another name")
        if exists and not rotate:
            raise AnalystError(
                f"analyst '{name}' exists; `billing analyst add {name} --rotate` gives it a new password")
        if exists:
            statement = sql.SQL("alter role {} password {}").format(sql.Identifier(name), sql.Literal(password))
        else:
            statement = sql.SQL("create role {} login password {} in role {}").format(
                sql.Identifier(name), sql.Literal(password), sql.Identifier(ANALYST_ROLE))
        try:
            connection.execute(statement)
        except psycopg.errors.InsufficientPrivilege as error:
            raise AnalystError(
                f"role {connection.info.user} cannot create or change logins in {ANALYST_ROLE}"
                f" ({error.diag.message_primary}): it needs CREATEROLE and, from PostgreSQL 16, ADMIN OPTION on"
                f" {ANALYST_ROLE}; or an administrator runs: create role {name} login password '...'"
                f" in role {ANALYST_ROLE}"
            ) from None
    return analyst_url(name, password)


def analyst_url(name: str, password: str) -> str:
    """The warehouse URL for an analyst login: the warehouse's host, port and database."""
    parts = connection_parts()
    credentials = f"{quote(name, safe='')}:{quote(password, safe='')}"
    return f"postgresql://{credentials}@{parts['host']}:{parts['port']}/{parts['dbname']}"
