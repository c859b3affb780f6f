"""What a customer has used so far this period, from the customer_usage_current_period mart."""

from __future__ import annotations

from psycopg.rows import dict_row

from billing.warehouse import connect


def current_usage(customer_id: str) -> list[dict]:
    """One row per plan charge of the customer's current period, as of the last pipeline run."""
    with connect() as connection:
        return connection.cursor(row_factory=dict_row).execute(
            "select * from billing_marts.customer_usage_current_period"
            " where customer_id = %s order by subscription_id, event_name",
            (customer_id,),
        ).fetchall()
