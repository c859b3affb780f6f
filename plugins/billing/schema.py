"""`billing init`: create or upgrade everything the pipeline needs. Safe to run any number of times."""

from __future__ import annotations

from billing.analysts import grant_analyst_role
from billing.contracts import contracts
from billing.quality.contract_gate import change_counting_sql
from billing.settings import PROJECT_ROOT
from billing.warehouse import connect

BILLING_SCHEMA_SQL = PROJECT_ROOT / "plugins" / "billing" / "sql" / "billing_schema.sql"

# NOTE: raw.usage_events is append-only (SPEC §1) and the usage pipeline processes only new rows.
# An UPDATE, DELETE or TRUNCATE of it bumps this counter, and the next dbt build that sees the
# counter moved rebuilds the event models from raw (billing.transform, docs/incremental.md).
RAW_EVENT_REWRITES_SQL = """
create sequence if not exists raw.usage_events_rewrites;

create or replace function raw.count_usage_events_rewrite() returns trigger
language plpgsql as $$
begin
    perform nextval('raw.usage_events_rewrites');
    return null;
end
$$;

create or replace trigger usage_events_rewritten
    after update or delete or truncate on raw.usage_events
    for each statement execute function raw.count_usage_events_rewrite();
"""


def init_warehouse() -> None:
    """Create schemas `raw` and `billing` and their tables, and the analyst role, in one transaction."""
    with connect() as connection:
        # NOTE: serialises concurrent `billing init` runs; `create ... if not exists` alone races.
        connection.execute("select pg_advisory_xact_lock(hashtext('billing init'))")
        connection.execute("create schema if not exists raw")
        for contract in contracts().values():
            connection.execute(contract.create_table_sql())
            for statement in contract.add_missing_columns_sql():
                connection.execute(statement)
            for statement in contract.create_indexes_sql():
                connection.execute(statement)
        connection.execute(RAW_EVENT_REWRITES_SQL)
        connection.execute(change_counting_sql())
        connection.execute(BILLING_SCHEMA_SQL.read_text())
        grant_analyst_role(connection)
