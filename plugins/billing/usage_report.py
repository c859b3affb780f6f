"""What a customer has used so far this period and may still use, from the marts the hourly
usage_pipeline keeps: customer_usage_current_period and customer_entitlements (SPEC §15)."""

from __future__ import annotations

from psycopg.errors import UndefinedTable
from psycopg.rows import dict_row

from billing.warehouse import connect


class UsageNotReported(LookupError):
    """The customer is unknown, or the marts have not been built yet; the message says which."""


def current_usage(customer_id: str) -> list[dict]:
    """One row per plan charge of the customer's current period, as of the last pipeline run."""
    return _rows_of(customer_id, "customer_usage_current_period", order_by="subscription_id, event_name")


def entitlements(customer_id: str) -> list[dict]:
    """One row per meter of the customer's current period: usage, limit, remaining, state."""
    return _rows_of(customer_id, "customer_entitlements", order_by="event_name")


def _rows_of(customer_id: str, mart: str, *, order_by: str) -> list[dict]:
    with connect() as connection:
        if not connection.execute("select 1 from raw.customers where customer_id = %s", (customer_id,)).fetchone():
            raise UsageNotReported(f"unknown customer '{customer_id}'")
        try:
            return connection.cursor(row_factory=dict_row).execute(
                f"select * from billing_marts.{mart} where customer_id = %s order by {order_by}", (customer_id,)
            ).fetchall()
        except UndefinedTable:
            raise UsageNotReported(
                f"billing_marts.{mart} does not exist yet: run `billing run usage_pipeline` first"
            ) from None
