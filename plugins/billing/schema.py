"""`billing init`: create or upgrade everything the pipeline needs. Safe to run any number of times.

On the operator's PostgreSQL, the role of `BILLING_WAREHOUSE_URL` needs no superuser, only what
`needs()` lists. Init checks it first, so that a pipeline that would fail later (dbt's incremental
models need temporary tables) is refused now, with nothing created and the missing privilege named.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from billing import raw_events
from billing.analysts import ANALYST_ROLE, grant_analyst_role
from billing.bookkeeping import backfill as backfill_ledger
from billing.contracts import contracts
from billing.quality.contract_gate import change_counting_sql
from billing.settings import PROJECT_ROOT
from billing.warehouse import connect, connection_parts, one_line

BILLING_SCHEMA_SQL = PROJECT_ROOT / "plugins" / "billing" / "sql" / "billing_schema.sql"


class InitRefused(Exception):
    """The warehouse's role lacks what the pipeline needs, or cannot connect; one line says which."""


def needs(database: str) -> str:
    """Every privilege the warehouse's role needs (README, "Your own PostgreSQL")."""
    return (
        f"CONNECT, CREATE and TEMPORARY on database {database}; CREATEROLE, unless role {ANALYST_ROLE}"
        " exists; to own those of its schemas that already exist"
    )


def init_warehouse() -> None:
    """Create schemas `raw` and `billing` and their tables, and the analyst role, in one transaction;
    post the ledger of invoices issued before it existed (once).

    Raises InitRefused, with nothing created, when the role lacks a privilege `needs()` lists.
    """
    with _refused_in_one_line(), connect() as connection:
        # NOTE: serialises concurrent `billing init` runs; `create ... if not exists` alone races.
        connection.execute("select pg_advisory_xact_lock(hashtext('billing init'))")
        _check_privileges(connection)
        connection.execute("create schema if not exists raw")
        for contract in contracts().values():
            if contract.partition_by:
                raw_events.create_table(connection)
            else:
                connection.execute(contract.create_table_sql())
            for statement in contract.add_missing_columns_sql():
                connection.execute(statement)
            for statement in contract.create_indexes_sql():
                connection.execute(statement)
        connection.execute(change_counting_sql())
        connection.execute(BILLING_SCHEMA_SQL.read_text())
        backfill_ledger(connection)
        grant_analyst_role(connection)


def _check_privileges(connection: psycopg.Connection) -> None:
    """Raise InitRefused naming each privilege of `needs()` that the role lacks and can be asked about."""
    role, database, create, temporary, analyst_role = connection.execute(
        "select current_user, current_database(),"
        " has_database_privilege(current_database(), 'CREATE'),"
        " has_database_privilege(current_database(), 'TEMPORARY'),"
        " rolsuper or rolcreaterole or to_regrole(%s) is not null"
        " from pg_roles where rolname = current_user",
        (ANALYST_ROLE,),
    ).fetchone()
    missing = [
        privilege for privilege, held in (
            (f"CREATE on database {database}", create),
            (f"TEMPORARY on database {database}", temporary),
            (f"CREATEROLE (role {ANALYST_ROLE} does not exist)", analyst_role),
        ) if not held
    ]
    if missing:
        raise InitRefused(f"billing init: role {role} lacks {' and '.join(missing)} (needs: {needs(database)})")


@contextmanager
def _refused_in_one_line() -> Iterator[None]:
    """What stops init on a connection or a privilege, as InitRefused (init's transaction is rolled back)."""
    try:
        yield
    except psycopg.errors.InsufficientPrivilege as error:
        # NOTE: what _check_privileges cannot see ahead: an object another role owns ("must be owner of ...").
        parts = connection_parts()
        raise InitRefused(
            f"billing init: role {parts['user']}: {error.diag.message_primary} (needs: {needs(parts['dbname'])})"
        ) from None
    except psycopg.OperationalError as error:  # e.g. CONNECT missing, a wrong password, no server
        raise InitRefused(f"billing init: {one_line(error)}") from None
