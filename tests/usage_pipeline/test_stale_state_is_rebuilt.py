"""The incremental models repair themselves when raw stops being append-only (docs/incremental.md).

A DELETE on raw.usage_events (an operator removing bad events, a test fixture) is invisible to an
incremental run, which only looks for new rows: `billing init`'s trigger counts it, and the next
build rebuilds the event and usage models from raw.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from billing import transform
from billing.catalog import apply_catalog
from billing.loading import load_events
from conftest import query, reset_warehouse
from spine.events import usage, write_csv

pytestmark = pytest.mark.slow

CATALOG = """
meters:
  - {event_name: api_call, display_name: API calls, aggregation: sum}
plans:
  - plan_id: metered
    name: Metered
    currency: USD
    interval: month
    charges:
      - {event_name: api_call, pricing_model: per_unit, unit_price: 0.01}
customers:
  - {customer_id: acme, name: Acme, currency: USD, collection_method: request_payment}
subscriptions:
  - {subscription_id: s_acme, customer_id: acme, plan_id: metered, started_at: "2026-06-01T00:00:00Z"}
"""
AS_OF = "2026-07-01T01:00:00+00:00"


def june_usage() -> list[tuple]:
    return query(
        "select quantity, count_events from billing_intermediate.int_meter_usage__aggregated"
        " where subscription_id = 's_acme' and period_start = '2026-06-01T00:00:00Z'"
    )


def test_a_delete_from_raw_makes_the_next_build_rebuild_from_raw(warehouse, tmp_path: Path):
    reset_warehouse()
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    apply_catalog(tmp_path / "catalog.yaml")
    load_events(write_csv(tmp_path / "june.csv", usage("acme", "api_call", [10, 20, 30], "2026-06-10", "june")),
                show_progress=False)
    transform.update_usage(as_of=AS_OF, grace="1 hours")
    assert june_usage() == [(60, 3)]

    load_events(write_csv(tmp_path / "more.csv", usage("acme", "api_call", [5], "2026-06-11", "more")),
                show_progress=False)
    update = transform.update_usage(as_of=AS_OF, grace="1 hours")
    assert (update.rebuilt_from_raw, update.ledger_rows_processed) == (False, 1)
    assert june_usage() == [(65, 4)]

    with transform.connect() as connection:
        connection.execute("delete from raw.usage_events where reference = 'june-1'")
    update = transform.update_usage(as_of=AS_OF, grace="1 hours")
    assert update.rebuilt_from_raw
    assert june_usage() == [(45, 3)]

    update = transform.update_usage(as_of=AS_OF, grace="1 hours")
    assert (update.rebuilt_from_raw, update.ledger_rows_processed) == (False, 0)
