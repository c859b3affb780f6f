"""`billing backfill`: every missed period closed in order through Airflow; a second backfill adds nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from billing.backfill import backfill, plan
from billing.catalog import apply_catalog
from billing.loading import load_events
from conftest import query, reset_warehouse

from spine.catalogs import PRO_PLAN
from spine.events import usage, write_csv

pytestmark = pytest.mark.slow

CATALOG = PRO_PLAN + """
customers:
  - {customer_id: utc_co, name: UTC Co, currency: USD, collection_method: request_payment}
subscriptions:
  - {subscription_id: s_utc, customer_id: utc_co, plan_id: pro, started_at: "2026-04-01T00:00:00Z"}
"""
START = datetime(2026, 4, 1, tzinfo=UTC)
END = datetime(2026, 7, 1, 6, tzinfo=UTC)


def test_backfill_closes_three_months_in_order_and_a_rerun_issues_nothing(warehouse, tmp_path):
    reset_warehouse()
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    apply_catalog(tmp_path / "catalog.yaml")
    events = [row for day in ("2026-04-10", "2026-05-10", "2026-06-10")
              for row in usage("utc_co", "api_call", [100 * int(day[6])], day, f"u{day}")]
    load_events(write_csv(tmp_path / "events.csv", events), show_progress=False)

    closes = plan(START, END, grace="1 hours")
    assert [(close.at.isoformat(), close.periods) for close in closes] == [
        ("2026-05-01T01:00:00+00:00", 1), ("2026-06-01T01:00:00+00:00", 1), ("2026-07-01T01:00:00+00:00", 1),
    ]
    outcomes = backfill(closes, grace="1 hours")
    assert [outcome.state for outcome in outcomes] == ["success"] * 3
    assert query("select invoice_number, subscription_id, period_start::date::text, total_minor"
                 " from billing.invoices order by 1") == [
        ("INV-000001", "s_utc", "2026-04-01", 1_400),  # $10 + 400 calls × $0.01
        ("INV-000002", "s_utc", "2026-05-01", 1_500),
        ("INV-000003", "s_utc", "2026-06-01", 1_600),
    ]

    assert plan(START, END, grace="1 hours") == []
    assert query("select count(*) from billing.invoices") == [(3,)]
