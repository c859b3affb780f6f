"""`billing invoices list|show|void`: an operator's view of issued invoices."""

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
  - plan_id: kwd
    name: Dinar plan
    currency: KWD
    interval: month
    base_fee: 10.0005
    charges:
      - {event_name: api_call, pricing_model: per_unit, unit_price: 0.0015}
customers:
  - {customer_id: gulf, name: Gulf Co, currency: KWD, collection_method: request_payment}
subscriptions:
  - {subscription_id: s_gulf, customer_id: gulf, plan_id: kwd, started_at: "2026-06-01T00:00:00Z"}
"""


def test_operator_lists_shows_and_voids_an_invoice(warehouse, tmp_path):
    reset_warehouse()
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    apply_catalog(tmp_path / "catalog.yaml")
    load_events(
        write_csv(tmp_path / "events.csv", usage("gulf", "api_call", [1_001], "2026-06-03", "g")),
        show_progress=False,
    )
    run_dag("billing_cycle_close", "2026-07-01T01:00:00Z", as_of="2026-07-01T01:00:00Z")
    # KWD has 3 decimals: 10.0005 → 10.001 (half away from zero); 1,001 × 0.0015 = 1.5015 → 1.502
    assert query("select invoice_number, total_minor, status from billing.invoices") == [("INV-000001", 11_503, "open")]

    listed = run_cli("invoices", "list", "--customer", "gulf").stdout
    assert "INV-000001" in listed and "KWD 11.503" in listed
    shown = run_cli("invoices", "show", "INV-000001").stdout
    assert "KWD 10.001" in shown and "KWD 1.502" in shown

    run_cli("invoices", "void", "INV-000001", "--reason", "sent to the wrong entity")
    assert query("select status from billing.invoices") == [("void",)]
    assert query(
        "select data ->> 'invoice_number', data ->> 'reason' from billing.webhook_events"
        " where event_type = 'billing.invoice.voided'"
    ) == [("INV-000001", "sent to the wrong entity")]

    again = run_cli("invoices", "void", "INV-000001", "--reason", "twice", check=False)
    assert again.returncode == 1 and "INV-000001 is void" in again.stderr
    missing = run_cli("invoices", "show", "INV-999999", check=False)
    assert missing.returncode == 1 and "no invoice with id or number 'INV-999999'" in missing.stderr
