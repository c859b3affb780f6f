"""Mid-period: usage so far, overage alerts once per threshold, daily snapshots, rejected-event reports.

Driven through the hourly usage_pipeline DAG (real Airflow), as the scheduler would run it.
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
plans:
  - plan_id: pro
    name: Pro
    currency: USD
    interval: month
    base_fee: 99
    charges:
      - {event_name: api_call, pricing_model: per_unit, unit_price: 0.01, included_units: 1000,
         alert_thresholds: [80, 100]}
customers:
  - {customer_id: busy, name: Busy, currency: USD, collection_method: request_payment}
subscriptions:
  - {subscription_id: s_busy, customer_id: busy, plan_id: pro, started_at: "2026-06-01T00:00:00Z"}
"""


def overage_alerts() -> list[tuple]:
    return query(
        "select data ->> 'threshold_percent', data ->> 'quantity' from billing.webhook_events"
        " where event_type = 'billing.subscriber_overage' order by created_at, 1"
    )


def test_thresholds_alert_once_each_and_usage_is_reported(warehouse, tmp_path):
    reset_warehouse()
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    apply_catalog(tmp_path / "catalog.yaml")

    # June 1–10: 850 calls (85 % of the included 1,000), and an event for an unknown meter
    # ingested in the hour before the run
    load_events(write_csv(tmp_path / "first.csv", usage("busy", "api_call", [500, 350], "2026-06-05", "a")),
                show_progress=False)
    (tmp_path / "bad.jsonl").write_text(
        '{"reference": "bad-1", "customer_id": "busy", "event_name": "api_calls", "value": 5,'
        ' "occurred_at": "2026-06-10T23:00:00Z", "ingested_at": "2026-06-10T23:30:00Z"}\n'
    )
    load_events(tmp_path / "bad.jsonl", show_progress=False)
    run_dag("usage_pipeline", "2026-06-11T00:00:00Z", as_of="2026-06-11T00:00:00Z")
    assert overage_alerts() == [("80", "850")]

    shown = run_cli("usage", "busy").stdout
    assert "850" in shown and "150" in shown  # used, included left
    assert "USD 0.00" in shown and "USD 15.50" in shown  # so far; projected 850 × 30/10 − 1,000 = 1,550 × $0.01

    load_events(
        write_csv(tmp_path / "second.csv", usage("busy", "api_call", [200], "2026-06-12", "b")),
        show_progress=False,
    )
    run_dag("usage_pipeline", "2026-06-13T00:00:00Z", as_of="2026-06-13T00:00:00Z")
    run_dag("usage_pipeline", "2026-06-13T00:00:00Z", as_of="2026-06-13T00:00:00Z")  # re-run: nothing twice
    assert overage_alerts() == [("80", "850"), ("100", "1050")]

    snapshots = query(
        "select data ->> 'subscription_id', (data ->> 'amount_minor')::int from billing.webhook_events"
        " where event_type = 'billing.subscriber_usage' order by data ->> 'as_of'"
    )
    assert snapshots == [("s_busy", 0), ("s_busy", 50)]  # one a day: June 11 and June 13
    [(reasons,)] = query(
        "select data -> 'reasons' from billing.webhook_events where event_type = 'billing.events.rejected'"
    )
    assert reasons["unknown_meter"]["count"] == 1
    assert reasons["unknown_meter"]["examples"][0]["reference"] == "bad-1"
