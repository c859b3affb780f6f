"""Usage limits (SPEC §15): notify, soft and hard, through the hourly pipeline and two closes.

Three customers on one price (USD 0.01 a call over 100 included, limit 1,000 calls), one behavior
each. June stays under the limit and is invoiced; in July each goes past it, and late June events
arrive: the hourly runs report the entitlements and announce each limit once; August's close
bills July (the hard one at the limit) with June re-rated (the hard one's adjustment stops at the
limit too). Every amount is worked out in the comments.
"""

from __future__ import annotations

import pytest
from billing.catalog import apply_catalog
from billing.loading import load_events
from conftest import query, reset_warehouse, run_cli, run_dag
from spine.events import usage, write_csv

pytestmark = pytest.mark.slow

CATALOG = """
meters:
  - {event_name: api_call, display_name: API calls, aggregation: sum}
  - {event_name: email, display_name: Emails, aggregation: count}
plans:
""" + "".join(f"""
  - plan_id: {behavior}
    name: {behavior.title()}
    currency: USD
    interval: month
    charges:
      - {{event_name: api_call, pricing_model: per_unit, unit_price: 0.01, included_units: 100,
         usage_limit: 1000, limit_behavior: {behavior}}}
""" for behavior in ("notify", "soft", "hard")) + """
      - {event_name: email, pricing_model: per_unit, unit_price: 0}   # the hard plan's, without a limit
customers:
""" + "".join(f"""
  - {{customer_id: {behavior}_co, name: {behavior}, currency: USD, collection_method: request_payment}}
""" for behavior in ("notify", "soft", "hard")) + """
subscriptions:
""" + "".join(f"""
  - {{subscription_id: sub_{behavior}, customer_id: {behavior}_co, plan_id: {behavior},
     started_at: "2026-06-01T00:00:00Z"}}
""" for behavior in ("notify", "soft", "hard"))


def load(tmp_path, name: str, *calls: tuple[str, int, str]) -> None:
    """(customer, calls, day) → one event each."""
    rows = [row for customer, count, day in calls
            for row in usage(f"{customer}_co", "api_call", [count], day, f"{name}-{customer}-{day}")]
    load_events(write_csv(tmp_path / f"{name}.csv", rows), show_progress=False)


def entitlements() -> list[tuple]:
    return query(
        "select customer_id, event_name, usage::text, usage_limit::text, remaining::text, limit_behavior,"
        " is_limit_reached, state from billing_marts.customer_entitlements order by 1, 2"
    )


def limits_reached() -> list[tuple]:
    return query(
        "select data ->> 'subscription_id', data ->> 'usage', data ->> 'state' from billing.webhook_events"
        " where event_type = 'billing.subscriber_limit.reached' order by 1"
    )


def invoices() -> list[tuple]:
    return query("select invoice_number, subscription_id, period_start::date::text, subtotal_minor"
                 " from billing.invoices order by 1")


def test_each_behavior_through_the_hourly_pipeline_and_the_closes(warehouse, tmp_path):
    reset_warehouse()
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    apply_catalog(tmp_path / "catalog.yaml")

    # June, under the limit: (600 − 100) × 0.01 = 5.00; the hard one (900 − 100) × 0.01 = 8.00
    load(tmp_path, "june", ("notify", 600, "2026-06-05"), ("soft", 600, "2026-06-05"), ("hard", 900, "2026-06-05"))
    run_dag("billing_cycle_close", "2026-07-01T01:00:00Z", as_of="2026-07-01T01:00:00Z")
    assert invoices() == [("INV-000001", "sub_hard", "2026-06-01", 800),
                          ("INV-000002", "sub_notify", "2026-06-01", 500),
                          ("INV-000003", "sub_soft", "2026-06-01", 500)]

    # the close keeps the entitlements too: July has begun, nothing used
    assert entitlements() == [
        ("hard_co", "api_call", "0", "1000", "1000", "hard", False, "ok"),
        ("hard_co", "email", "0", None, None, "soft", False, "ok"),  # no limit: always ok
        ("notify_co", "api_call", "0", "1000", "1000", "notify", False, "ok"),
        ("soft_co", "api_call", "0", "1000", "1000", "soft", False, "ok"),
    ]

    # July: 1,200 calls for the soft and the hard one, past the limit, exactly 1,000 for the notify one
    # (a limit is reached at it); and 300 late June calls for the soft and the hard one
    load(tmp_path, "july", *[(behavior, 600, day) for behavior in ("soft", "hard")
                             for day in ("2026-07-05", "2026-07-12")],
         ("notify", 600, "2026-07-05"), ("notify", 400, "2026-07-12"),
         ("soft", 300, "2026-06-28"), ("hard", 300, "2026-06-28"))
    run_dag("usage_pipeline", "2026-07-13T00:00:00Z", as_of="2026-07-13T00:00:00Z")
    assert entitlements() == [
        ("hard_co", "api_call", "1200", "1000", "0", "hard", True, "blocked"),
        ("hard_co", "email", "0", None, None, "soft", False, "ok"),
        ("notify_co", "api_call", "1000", "1000", "0", "notify", True, "ok"),  # notify changes nothing else
        ("soft_co", "api_call", "1200", "1000", "0", "soft", True, "over"),
    ]
    # so far: the hard one billed at the limit, (1,000 − 100) × 0.01, like the notify one; the soft one
    # (1,200 − 100) × 0.01
    assert query("select subscription_id, quantity::text, amount_minor from billing_marts.customer_usage_current_period"
                 " where event_name = 'api_call' order by 1") == [
        ("sub_hard", "1200", 900), ("sub_notify", "1000", 900), ("sub_soft", "1200", 1100)]
    reached = [("sub_hard", "1200", "blocked"), ("sub_notify", "1000", "ok"), ("sub_soft", "1200", "over")]
    assert limits_reached() == reached
    run_dag("usage_pipeline", "2026-07-14T00:00:00Z", as_of="2026-07-14T00:00:00Z")
    assert limits_reached() == reached  # once per subscription, period and meter

    # the application's lookup by customer and meter is indexed
    [(index,)] = query("select indexdef from pg_indexes"
                       " where schemaname = 'billing_marts' and tablename = 'customer_entitlements'")
    assert index.endswith("(customer_id, event_name)")

    shown = run_cli("entitlements", "hard_co").stdout
    assert "1200" in shown and "1000" in shown and "blocked" in shown
    unknown = run_cli("entitlements", "nobody", check=False)
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "error: unknown customer 'nobody'"

    # August's close: July billed, June re-rated. notify: 900 × 0.01 = 9.00. soft: 11.00, and June
    # is now 900 calls, 8.00 where 5.00 was billed: +3.00. hard: July at the limit, 9.00; June is
    # 1,200 calls, capped at 1,000: 9.00 where 8.00 was billed: +1.00, not the 3.00 of 300 calls.
    run_dag("billing_cycle_close", "2026-08-01T01:00:00Z", as_of="2026-08-01T01:00:00Z")
    assert invoices()[3:] == [("INV-000004", "sub_hard", "2026-07-01", 1_000),
                              ("INV-000005", "sub_notify", "2026-07-01", 900),
                              ("INV-000006", "sub_soft", "2026-07-01", 1_400)]
    assert query(
        "select invoices.invoice_number, lines.kind, lines.quantity::text, lines.amount_minor,"
        " lines.detail ->> 'usage_limit', lines.detail ->> 'over_limit_units'"
        " from billing.invoice_lines as lines join billing.invoices using (invoice_id)"
        " where invoices.invoice_number in ('INV-000004', 'INV-000006') and lines.amount_minor != 0"
        " order by 1, lines.line_no"
    ) == [
        ("INV-000004", "usage", "1000", 900, "1000", "200"),  # 200 calls listed, not billed
        ("INV-000004", "adjustment", None, 100, None, None),
        ("INV-000006", "usage", "1200", 1_100, None, None),
        ("INV-000006", "adjustment", None, 300, None, None),
    ]
    assert query(
        "select subscription_id, period_start::date::text, usage_quantity::text, billed_quantity::text,"
        " over_limit_units::text, is_closed from billing_marts.fct_over_limit_usage order by 1, 2"
    ) == [("sub_hard", "2026-06-01", "1200", "1000", "200", True),
          ("sub_hard", "2026-07-01", "1200", "1000", "200", True)]
