"""`billing init`: create or upgrade everything the pipeline needs. Safe to run any number of times."""

from __future__ import annotations

from billing.contracts import contracts
from billing.settings import PROJECT_ROOT
from billing.warehouse import connect

BILLING_SCHEMA_SQL = PROJECT_ROOT / "plugins" / "billing" / "sql" / "billing_schema.sql"


def init_warehouse() -> None:
    """Create schemas `raw` and `billing` and their tables in one transaction."""
    with connect() as connection:
        # NOTE: serialises concurrent `billing init` runs; `create ... if not exists` alone races.
        connection.execute("select pg_advisory_xact_lock(hashtext('billing init'))")
        connection.execute("create schema if not exists raw")
        for contract in contracts().values():
            connection.execute(contract.create_table_sql())
            for statement in contract.add_missing_columns_sql():
                connection.execute(statement)
        connection.execute(BILLING_SCHEMA_SQL.read_text())
