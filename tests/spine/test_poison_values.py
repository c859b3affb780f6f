"""A value no invoice can hold (NaN, ±Infinity, 1e400) is `invalid_value` (SPEC §2): it is
quarantined with that reason and every customer, its sender included, is invoiced for the rest. An
amount no invoice line can hold holds that customer's draft; every other customer is invoiced."""

from __future__ import annotations

import pytest
from billing.catalog import apply_catalog
from billing.loading import load_events
from conftest import query, reset_warehouse, run_cli, run_dag

from spine.catalogs import PRO_PLAN
from spine.events import write_csv

pytestmark = [pytest.mark.slow, pytest.mark.independent]

CATALOG = """
meters:
  - {event_name: api_call, display_name: API calls, aggregation: sum}
  - {event_name: storage_gb, display_name: Storage, aggregation: max}
plans:
  - plan_id: pro
    name: Pro
    currency: USD
    interval: month
    base_fee: 10
    charges:
      - {event_name: api_call, pricing_model: per_unit, unit_price: 0.01}
      - {event_name: storage_gb, pricing_model: per_unit, unit_price: 1}
customers:
  - {customer_id: poisoned, name: Poisoned, currency: USD, collection_method: request_payment}
  - {customer_id: healthy, name: Healthy, currency: USD, collection_method: request_payment}
subscriptions:
  - {subscription_id: s_poisoned, customer_id: poisoned, plan_id: pro, started_at: "2025-01-01T00:00:00Z"}
  - {subscription_id: s_healthy, customer_id: healthy, plan_id: pro, started_at: "2025-01-01T00:00:00Z"}
"""

EVENTS = [
    ("p-nan", "poisoned", "api_call", "NaN", "", "2025-01-05T00:00:00Z"),
    ("p-inf", "poisoned", "api_call", "Infinity", "", "2025-01-05T01:00:00Z"),
    ("p-minus-inf", "poisoned", "storage_gb", "-Infinity", "", "2025-01-05T02:00:00Z"),
    ("p-huge", "poisoned", "storage_gb", "1e400", "", "2025-01-05T03:00:00Z"),
    ("p-fine", "poisoned", "api_call", 300, "", "2025-01-06T00:00:00Z"),
    ("p-fine-gb", "poisoned", "storage_gb", 2, "", "2025-01-06T00:00:00Z"),
    ("h-fine", "healthy", "api_call", 500, "", "2025-01-06T00:00:00Z"),
]


def test_poison_values_are_quarantined_and_everyone_is_invoiced(warehouse, tmp_path):
    reset_warehouse()
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    apply_catalog(tmp_path / "catalog.yaml")
    load_events(write_csv(tmp_path / "events.csv", EVENTS), show_progress=False)

    run_dag("billing_cycle_close", "2025-02-01T01:00:00Z")

    assert query("select reference, reject_reason from billing_marts.fct_rejected_usage_events order by 1") == [
        ("p-huge", "invalid_value"), ("p-inf", "invalid_value"), ("p-minus-inf", "invalid_value"),
        ("p-nan", "invalid_value"),
    ]
    assert query("select subscription_id, total_minor from billing.invoices order by 1") == [
        ("s_healthy", 1_500),   # $10 + 500 calls × $0.01
        ("s_poisoned", 1_500),  # $10 + 300 calls × $0.01 + 2 GB × $1
    ]


# The shared `pro` plan, and `whale` at $1,000,000 a call
WHALE_CATALOG = PRO_PLAN + """
  - plan_id: whale
    name: Whale
    currency: USD
    interval: month
    base_fee: 10
    charges:
      - {event_name: api_call, pricing_model: per_unit, unit_price: 1000000}
customers:
  - {customer_id: whale, name: Whale, currency: USD, collection_method: request_payment}
  - {customer_id: healthy, name: Healthy, currency: USD, collection_method: request_payment}
subscriptions:
  - {subscription_id: s_whale, customer_id: whale, plan_id: whale, started_at: "2025-01-01T00:00:00Z"}
  - {subscription_id: s_healthy, customer_id: healthy, plan_id: pro, started_at: "2025-01-01T00:00:00Z"}
"""


def test_an_amount_no_line_can_hold_holds_that_draft_and_everyone_else_is_invoiced(warehouse, tmp_path):
    reset_warehouse()
    (tmp_path / "catalog.yaml").write_text(WHALE_CATALOG)
    apply_catalog(tmp_path / "catalog.yaml")
    # 1e12 calls is a valid value (under max_event_value), but at $1,000,000 a call the line is
    # $10^18 = 10^20 cents: beyond what a line holds (max_amount_minor, 10^15)
    load_events(write_csv(tmp_path / "events.csv", [
        ("w-huge", "whale", "api_call", "1000000000000", "", "2025-01-05T00:00:00Z"),
        ("h-fine", "healthy", "api_call", 500, "", "2025-01-06T00:00:00Z"),
    ]), show_progress=False)

    run_dag("billing_cycle_close", "2025-02-01T01:00:00Z")

    assert query("select subscription_id, total_minor from billing.invoices") == [("s_healthy", 1_500)]
    assert query(
        "select subscription_id, hold_reason, subtotal_minor from billing_marts.fct_draft_invoices"
        " where hold_reason is not null"
    ) == [("s_whale", "amount_out_of_range", None)]
    # the gate's outcome: failed, recorded, and not blocking (the run succeeded above)
    [(success, observed)] = query(
        "select success, observed from billing.quality_results"
        " where gate = 'draft_invoices' and check_name = 'drafts_are_billable'"
    )
    assert not success
    assert [(row["customer_id"], row["hold_reason"]) for row in observed["sample_rows"]] == [
        ("whale", "amount_out_of_range")]
    listed = run_cli("invoices", "list").stdout
    assert "held draft" in listed and "(whale, s_whale, period 2025-01-01 00:00 to 2025-02-01 00:00):" \
        " amount_out_of_range" in listed

    # a re-run issues nothing more and still holds the draft
    run_dag("billing_cycle_close", "2025-02-01T02:00:00Z")
    assert query("select subscription_id from billing.invoices") == [("s_healthy",)]
