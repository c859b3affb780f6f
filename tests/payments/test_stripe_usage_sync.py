"""The usage sync to Stripe Meters (SPEC §16), through the real stripe_usage_sync DAG (in-process
Airflow, real dbt, the real SDK) against a local Stripe-compatible server whose clock the test moves.

One scenario, step by step (the tests of this module build on each other): a subscription of a
plan Stripe invoices, period [D, D+2d), D three days ago (Stripe takes timestamps of the past 35
days). Each step checks what Stripe would bill against hand-computed sums.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import query, reset_warehouse, run_cli, run_dag
from stripe_meters_server import FakeStripeMeters
from stripe_server import API_KEY

pytestmark = pytest.mark.slow

D = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)
PERIOD_END = D + timedelta(days=2)
CUSTOMER = "cus_ACME"

CATALOG = f"""
meters:
  - {{event_name: tokens, display_name: Tokens, aggregation: sum, stripe_meter_event_name: stripe_tokens}}
  - {{event_name: api_call, display_name: API calls, aggregation: count, stripe_meter_event_name: stripe_calls}}
plans:
  - plan_id: metered
    name: Metered by Stripe
    currency: USD
    interval: month
    invoiced_by: stripe
    charges:
      - {{event_name: tokens, pricing_model: per_unit, unit_price: 0.01}}
      - {{event_name: api_call, pricing_model: per_unit, unit_price: 0.10}}
customers:
  - {{customer_id: acme, name: Acme, currency: USD, collection_method: request_payment, stripe_customer_id: {CUSTOMER}}}
subscriptions:
  - {{subscription_id: sub_acme, customer_id: acme, plan_id: metered, started_at: "{D.isoformat()}",
      ended_at: "{PERIOD_END.isoformat()}"}}
"""


def at(hours: float) -> datetime:
    return D + timedelta(hours=hours)


def ident(event_name: str, hour: int, version: int = 1) -> str:
    from billing.stripe_sync import hour_identifier

    return hour_identifier("sub_acme", event_name, at(hour), version)


def load(tmp_path: Path, name: str, *rows: tuple[str, str, object, datetime]) -> None:
    lines = ["reference,customer_id,event_name,value,action,occurred_at"]
    lines += [f"{reference},acme,{event},{'' if value is None else value},,{moment.isoformat()}"
              for reference, event, value, moment in rows]
    (tmp_path / name).write_text("\n".join(lines) + "\n")
    run_cli("load", "events", str(tmp_path / name))


def billed(stripe: FakeStripeMeters, event_name: str) -> int:
    return stripe.billed(CUSTOMER, event_name, D, PERIOD_END)


def meter_event_posts(stripe: FakeStripeMeters) -> list[str]:
    return [seen.form.get("identifier") for seen in stripe.requests if seen.path == "/v1/billing/meter_events"]


def sends() -> list[tuple]:
    return query("select identifier, kind, value, status from billing.stripe_usage_sends order by hour_start,"
                 " event_name, version")


@pytest.fixture(scope="module")
def stripe(warehouse, tmp_path_factory):
    from billing.catalog import apply_catalog

    reset_warehouse()
    catalog = tmp_path_factory.mktemp("stripe_sync") / "catalog.yaml"
    catalog.write_text(CATALOG)
    apply_catalog(catalog)
    saved = {name: os.environ.get(name) for name in ("BILLING_STRIPE_API_KEY", "BILLING_STRIPE_API_BASE",
                                                      "BILLING_STRIPE_TIMEOUT")}
    with FakeStripeMeters(slow_seconds=2.0, now=at(3) + timedelta(minutes=2)) as api:
        api.create_meter("stripe_tokens")
        api.create_meter("stripe_calls")
        os.environ.update(BILLING_STRIPE_API_KEY=API_KEY, BILLING_STRIPE_API_BASE=api.url, BILLING_STRIPE_TIMEOUT="1")
        yield api
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def test_each_hour_that_is_over_is_sent_once_through_a_lost_answer_and_a_gateway_error(stripe, tmp_path):
    load(tmp_path, "first.csv",
         ("t1", "tokens", 5, at(1.1)), ("t2", "tokens", 7, at(1.3)), ("t1", "tokens", 5, at(1.1)),  # a duplicate
         ("t3", "tokens", 3, at(2.5)), ("t4", "tokens", "2.5", at(4)),
         ("c1", "api_call", None, at(1.05)), ("c2", "api_call", None, at(1.1)), ("c3", "api_call", None, at(3)))
    # the first call's answer is lost after Stripe recorded it; the third fails with a 500: each try
    # stops there and the task's retry sends the rest
    stripe.lose_answer_once(ident("api_call", 1))
    stripe.fail_once(ident("tokens", 2))

    run_dag("stripe_usage_sync", at(3).isoformat())

    # hours 1 and 2 are over at D+3h; hour 3 (api_call) and 4 (tokens) are not
    assert billed(stripe, "stripe_tokens") == 5 + 7 + 3
    assert billed(stripe, "stripe_calls") == 2
    assert sends() == [
        (ident("api_call", 1), "usage", 2, "sent"),
        (ident("tokens", 1), "usage", 12, "sent"),
        (ident("tokens", 2), "usage", 3, "sent"),
    ]
    # the lost one sent again and recognised by Stripe's "already exists"; the failed one twice; no third
    assert sorted(meter_event_posts(stripe)) == sorted(
        [ident("api_call", 1)] * 2 + [ident("tokens", 1)] + [ident("tokens", 2)] * 2
    )
    timestamps = {event["identifier"]: event["timestamp"] for event in stripe.meter_events.values()}
    assert timestamps[ident("tokens", 2)] == int(at(2).timestamp())  # inside the hour
    # Stripe invoices the plan: the warehouse waits for no invoice of it
    assert query("select count(*) from billing_intermediate.int_subscription_periods__awaiting_invoice") == [(0,)]


def test_a_rerun_and_a_backfill_of_past_hours_send_nothing_again(stripe):
    posts = len(meter_event_posts(stripe))

    run_dag("stripe_usage_sync", at(3).isoformat())
    # a backfill in the middle of hour 2, which a later run sent: its over hours are in Stripe already,
    # and an hour not over yet at its as_of is never taken back
    run_dag("stripe_usage_sync", at(2.5).isoformat())

    assert len(meter_event_posts(stripe)) == posts
    assert not [seen for seen in stripe.requests if seen.path == "/v1/billing/meter_event_adjustments"]
    assert billed(stripe, "stripe_tokens") == 15


def test_a_late_event_within_24_hours_cancels_the_hour_and_sends_a_new_version(stripe, tmp_path):
    load(tmp_path, "late.csv", ("t5", "tokens", 4, at(1.7)))
    stripe.now = at(5) + timedelta(minutes=2)

    run_dag("stripe_usage_sync", at(5).isoformat())

    assert billed(stripe, "stripe_tokens") == 16 + 3  # the fraction of hour 4 is not sent
    assert billed(stripe, "stripe_calls") == 3
    assert stripe.meter_events[ident("tokens", 1)]["cancelled"]
    assert stripe.meter_events[ident("tokens", 1, 3)]["payload"]["value"] == "16"
    assert [row for row in sends() if row[0].startswith(ident("tokens", 1)) or row[0].endswith(ident("tokens", 1))] == [
        (ident("tokens", 1), "usage", 12, "sent"),
        (f"cancel:{ident('tokens', 1)}", "cancel", -12, "sent"),
        (ident("tokens", 1, 3), "usage", 16, "sent"),
    ]
    assert query("select event_name, hour_start, warehouse_quantity, stripe_quantity, reason"
                 " from billing.stripe_usage_unsynced") == [
        ("tokens", at(4), Decimal("2.5"), 0, "not_whole_number: Stripe meter events take whole numbers only"),
    ]


def test_a_late_event_after_24_hours_is_sent_as_a_correcting_event(stripe, tmp_path):
    load(tmp_path, "later.csv", ("t6", "tokens", 6, at(2.8)), ("c4", "api_call", None, at(2.2)))
    stripe.now = at(30)  # Stripe received hour 2's event 28 h ago: its cancel is refused

    run_dag("stripe_usage_sync", at(30).isoformat())

    assert billed(stripe, "stripe_tokens") == 16 + 3 + 6
    assert billed(stripe, "stripe_calls") == 4
    assert not stripe.meter_events[ident("tokens", 2)]["cancelled"]
    assert stripe.meter_events[ident("tokens", 2, 3)]["payload"]["value"] == "6"
    assert [row[1:] for row in sends() if ident("tokens", 2) in row[0]] == [
        ("usage", 3, "sent"), ("cancel", -3, "refused"), ("correction", 6, "sent"),
    ]


def test_the_reconciliation_before_stripe_invoices_fails_on_a_difference_and_announces_it(stripe):
    from billing.orchestration import run_dag as run

    as_of = PERIOD_END + timedelta(minutes=30)
    stripe.now = as_of

    outcome = run("stripe_usage_sync", logical_date=as_of, conf={})

    # tokens: 5 + 7 + 4 + 3 + 6 + 2.5 in the warehouse, 25 in Stripe (2.5 cannot be sent); calls agree
    assert list(outcome.failed_tasks) == ["check_stripe_sync"]
    assert query("select event_name, warehouse_quantity, stripe_quantity from billing.stripe_usage_reconciliations"
                 " order by event_name") == [("api_call", 4, 4), ("tokens", Decimal("27.5"), 25)]
    [(data,)] = query("select data from billing.webhook_events where event_type = 'billing.usage_sync.mismatch'")
    assert (data["subscription_id"], data["event_name"], data["warehouse_quantity"], data["stripe_quantity"]) == (
        "sub_acme", "tokens", "27.5", 25)


def test_a_cycle_close_issues_no_invoice_for_a_plan_stripe_invoices_and_its_gates_pass(stripe):
    run_dag("billing_cycle_close", (PERIOD_END + timedelta(hours=2)).isoformat())

    assert query("select count(*) from billing.invoices") == [(0,)]
    # the draft gate's "every active subscription has a draft" expects none for it, and passed
    assert query("select bool_and(success) from billing.quality_results where gate = 'draft_invoices'") == [(True,)]


def test_after_stripe_invoiced_the_period_a_late_event_is_listed_not_sent(stripe, tmp_path):
    load(tmp_path, "too_late.csv", ("t7", "tokens", 1, at(5.5)))
    posts = len(meter_event_posts(stripe))
    stripe.now = PERIOD_END + timedelta(hours=3)

    run_dag("stripe_usage_sync", (PERIOD_END + timedelta(hours=3)).isoformat())

    assert len(meter_event_posts(stripe)) == posts
    assert query("select hour_start, warehouse_quantity, stripe_quantity, reason from billing.stripe_usage_unsynced"
                 " order by hour_start") == [
        (at(4), Decimal("2.5"), 0, "not_whole_number: Stripe meter events take whole numbers only"),
        (at(5), 1, 0, "period_finalized: Stripe has invoiced the period"),
    ]


def test_sync_status_shows_each_subscriptions_sends(stripe):
    output = run_cli("stripe", "sync-status").stdout

    assert "sub_acme" in output
    # sent events: api_call 1, 3, 2; tokens 1, 2, 1 v3, 2 correction; corrected: a cancel and a correction
    assert "sub_acme: sent 7, pending 0, corrected 2, unsynced 2;" in output
    assert "unsynced sub_acme tokens" in output and "not_whole_number" in output


def test_the_analysts_mart_shows_the_sync_state_to_the_analyst_role(stripe):
    from billing.warehouse import connect

    with connect() as connection, connection.transaction():
        connection.execute("set local role billing_analyst")
        rows = connection.execute(
            "select event_name, count_sent_events, count_pending_calls, count_refused_calls, count_corrected_hours,"
            " count_unsynced_hours, stripe_quantity, unsynced_quantity"
            " from billing_marts.fct_stripe_usage_sync where subscription_id = 'sub_acme' order by event_name"
        ).fetchall()

    # tokens: one refused cancel; 16 + 3 + 6 in Stripe, the 2.5 of hour 4 and the 1 of hour 5 unsynced
    assert rows == [("api_call", 3, 0, 0, 0, 0, 4, 0), ("tokens", 4, 0, 1, 2, 2, 25, Decimal("3.5"))]
