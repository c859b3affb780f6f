"""A failed gate stops the cycle close before anything is issued, charged or announced."""

from __future__ import annotations

from pathlib import Path

from conftest import query, reset_warehouse, run_cli
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
      - {event_name: api_call, pricing_model: per_unit, unit_price: 0.001}
customers:
  - {customer_id: twice, name: Twice, currency: USD, collection_method: auto_charge, payment_method_id: pm_card_visa}
subscriptions:
  - {subscription_id: s_first, customer_id: twice, plan_id: usage_usd, started_at: "2026-06-01T00:00:00Z"}
  - {subscription_id: s_second, customer_id: twice, plan_id: usage_usd, started_at: "2026-06-15T00:00:00Z",
     billing_anchor_day: 1}
"""
FIX = """
subscriptions:
  - {subscription_id: s_first, customer_id: twice, plan_id: usage_usd, started_at: "2026-06-01T00:00:00Z",
     ended_at: "2026-06-15T00:00:00Z"}
"""


def test_overlapping_subscriptions_stop_the_close_until_fixed(warehouse, tmp_path: Path):
    reset_warehouse()
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    run_cli("catalog", "apply", str(tmp_path / "catalog.yaml"))
    events = usage("twice", "api_call", [1_000, 2_000], "2026-06-10", "early") + usage(
        "twice", "api_call", [4_000], "2026-06-20", "late")
    run_cli("load", "events", str(write_csv(tmp_path / "events.csv", events)))

    stopped = run_cli("close-cycles", "--as-of", "2026-07-01T01:00:00Z", check=False)
    assert stopped.returncode == 1
    assert "check_closing_events" in stopped.stderr
    assert "subscriptions_do_not_overlap" in stopped.stderr
    assert "expect_table_row_count_to_equal" in stopped.stderr
    assert query("select count(*) from billing.invoices") == [(0,)]
    assert query("select count(*) from billing.charge_attempts") == [(0,)]
    assert query("select count(*) from billing.webhook_events") == [(0,)]
    assert query(
        "select check_name, success from billing.quality_results"
        " where gate = 'closing_events' and not success"
    ) == [("subscriptions_do_not_overlap", False)]

    (tmp_path / "fix.yaml").write_text(FIX)
    run_cli("catalog", "apply", str(tmp_path / "fix.yaml"))
    run_cli("close-cycles", "--as-of", "2026-07-01T01:00:00Z")
    assert query("select invoice_number, subscription_id, total_minor from billing.invoices order by 1") == [
        ("INV-000001", "s_first", 300),   # [Jun 1, Jun 15): 3,000 calls × $0.001
        ("INV-000002", "s_second", 400),  # [Jun 15, Jul 1): 4,000 calls
    ]
