"""The charge_retries DAG through Airflow: one retry a day, 3 attempts at most, 72 hours at most.

The schedule has one home, the view billing.charge_retry_policy, which charging and retries read.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from billing.catalog import apply_catalog
from billing.loading import load_events
from billing.payments.retries import retry_failed_charges
from billing.payments.sandbox import SandboxGateway
from billing.schema import init_warehouse
from billing.warehouse import connect
from conftest import query, reset_warehouse, run_dag
from spine.events import usage, write_csv

pytestmark = [pytest.mark.slow, pytest.mark.independent]

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
    # what remained ($2.00 and $1.00) written off to bad debt, in the transaction that gave them up
    assert query(
        "select invoices.subscription_id, lines.account, lines.debit_minor, lines.credit_minor"
        " from billing.journal_entries as entries join billing.journal_lines as lines using (entry_id)"
        " join billing.invoices using (invoice_id) where entries.kind = 'write_off' order by 1, lines.line_no"
    ) == [
        ("s_never", "bad_debt", 200, 0), ("s_never", "accounts_receivable", 0, 200),
        ("s_once", "bad_debt", 100, 0), ("s_once", "accounts_receivable", 0, 100),
    ]


def test_the_schedule_is_spec_s_one_row_sql_can_read(warehouse):
    assert query("select max_attempts, retry_spacing, give_up_after from billing.charge_retry_policy") == [
        (3, timedelta(days=1), timedelta(hours=72)),
    ]


@pytest.fixture
def four_attempts_given_up_after_26_hours(warehouse):
    """Another schedule in the view, for one test; `billing init` puts SPEC's back."""
    with connect() as connection:
        connection.execute(
            "create or replace view billing.charge_retry_policy as"
            " select 4 as max_attempts, interval '1 day' as retry_spacing, interval '26 hours' as give_up_after"
        )
    yield
    init_warehouse()


def test_charging_and_retries_follow_the_schedule_in_the_view(four_attempts_given_up_after_26_hours, tmp_path):
    close_june(tmp_path)  # attempt 1 of both at 07-01 01:00
    for now in ["2026-07-02T02:00:00Z", "2026-07-03T02:00:00Z"]:
        retry_failed_charges(SandboxGateway(), now=datetime.fromisoformat(now))
    # a third failure of 4 allowed: still payment_failed (SPEC's 3 would make it uncollectible)
    assert statuses() == {"s_once": "paid", "s_never": "payment_failed"}

    retry_failed_charges(SandboxGateway(), now=datetime(2026, 7, 4, 4, 30, tzinfo=UTC))
    # 26.5 hours after attempt 3: given up (SPEC's 72 hours would retry)
    assert statuses() == {"s_once": "paid", "s_never": "uncollectible"}
    assert [(subscription, attempt_no) for subscription, attempt_no, _, _ in attempts()] == [
        ("s_never", 1), ("s_never", 2), ("s_never", 3), ("s_once", 1), ("s_once", 2),
    ]
