"""The charge_retries DAG through Airflow: one retry a day, 3 attempts at most, 72 hours at most."""

from __future__ import annotations

from pathlib import Path

from billing.catalog import apply_catalog
from billing.loading import load_events
from conftest import query, reset_warehouse, run_dag
from spine.events import usage, write_csv

CATALOG = """
meters:
  - {event_name: api_call, display_name: API calls, aggregation: sum}
plans:
  - plan_id: usage_usd
    name: Usage
    currency: USD
    interval: month
    charges:
      - {event_name: api_call, pricing_model: per_unit, unit_price: 0.01}
customers:
  - {customer_id: once, name: Declines once, currency: USD, collection_method: auto_charge,
     payment_method_id: pm_card_declineOnce}
  - {customer_id: never, name: Always declines, currency: USD, collection_method: auto_charge,
     payment_method_id: pm_card_chargeDeclined}
subscriptions:
  - {subscription_id: s_once, customer_id: once, plan_id: usage_usd, started_at: "2026-06-01T00:00:00Z"}
  - {subscription_id: s_never, customer_id: never, plan_id: usage_usd, started_at: "2026-06-01T00:00:00Z"}
"""


def close_june(tmp_path: Path) -> None:
    reset_warehouse()
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    apply_catalog(tmp_path / "catalog.yaml")
    events = usage("once", "api_call", [100], "2026-06-05", "o") + usage("never", "api_call", [200], "2026-06-05", "n")
    load_events(write_csv(tmp_path / "events.csv", events), show_progress=False)
    run_dag("billing_cycle_close", "2026-07-01T01:00:00Z", as_of="2026-07-01T01:00:00Z")


def statuses() -> dict[str, str]:
    return dict(query("select subscription_id, status from billing.invoices"))


def attempts() -> list[tuple]:
    return query(
        "select invoices.subscription_id, attempt_no, charge_attempts.status, failure_code"
        " from billing.charge_attempts join billing.invoices using (invoice_id) order by 1, 2"
    )


def events_of(event_type: str) -> list[tuple]:
    return query(
        "select data -> 'invoice' ->> 'subscription_id', data ->> 'attempt_no' from billing.webhook_events"
        " where event_type = %s order by 1, 2", event_type,
    )


def test_failed_charges_are_retried_daily_until_paid_or_uncollectible(warehouse, tmp_path):
    close_june(tmp_path)
    assert statuses() == {"s_once": "payment_failed", "s_never": "payment_failed"}

    run_dag("charge_retries", "2026-07-01T02:00:00Z")  # same day: nothing
    run_dag("charge_retries", "2026-07-02T02:00:00Z")
    run_dag("charge_retries", "2026-07-02T02:00:00Z")  # re-run: nothing twice
    assert statuses() == {"s_once": "paid", "s_never": "payment_failed"}

    run_dag("charge_retries", "2026-07-03T02:00:00Z")
    assert statuses() == {"s_once": "paid", "s_never": "uncollectible"}
    assert attempts() == [
        ("s_never", 1, "failed", "card_declined"),
        ("s_never", 2, "failed", "card_declined"),
        ("s_never", 3, "failed", "card_declined"),
        ("s_once", 1, "failed", "card_declined"),
        ("s_once", 2, "succeeded", None),
    ]
    assert query("select count(*) from billing.sandbox_gateway_charges") == [(5,)]
    assert events_of("billing.charge.succeeded") == [("s_once", "2")]
    assert events_of("billing.charge.failed") == [("s_never", "1"), ("s_never", "2"), ("s_never", "3"), ("s_once", "1")]
    assert query(
        "select data ->> 'subscription_id', data ->> 'status' from billing.webhook_events"
        " where event_type = 'billing.invoice.uncollectible'"
    ) == [("s_never", "uncollectible")]

    run_dag("charge_retries", "2026-07-04T02:00:00Z")  # nothing left to try
    assert len(attempts()) == 5


def test_an_invoice_unpaid_72_hours_after_its_last_attempt_is_given_up(warehouse, tmp_path):
    close_june(tmp_path)
    run_dag("charge_retries", "2026-07-04T02:00:00Z")  # 73 hours later
    assert statuses() == {"s_once": "uncollectible", "s_never": "uncollectible"}
    assert [attempt_no for _, attempt_no, _, _ in attempts()] == [1, 1]
    assert query(
        "select count(*) from billing.webhook_events where event_type = 'billing.invoice.uncollectible'"
    ) == [(2,)]
