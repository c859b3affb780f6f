"""Usage that arrives after its period was invoiced is re-rated with the whole period (SPEC §6).

The difference lands as an adjustment line on the subscription's next invoice, naming the
original; the original is never touched. A credit larger than the next invoice becomes a grant.
"""

from __future__ import annotations

from billing.catalog import apply_catalog
from billing.loading import load_events
from conftest import query, reset_warehouse, run_dag
from spine.events import usage, write_csv

CATALOG = """
meters:
  - {event_name: api_call, display_name: API calls, aggregation: sum}
plans:
  - plan_id: tiered
    name: Tiered
    currency: EUR
    interval: month
    charges:
      - event_name: api_call
        pricing_model: graduated
        tiers:
          - {up_to: 10000, unit_price: PRICE}
          - {up_to: null, unit_price: 0.01}
customers:
  - {customer_id: late, name: Late Co, currency: EUR, collection_method: request_payment}
subscriptions:
  - {subscription_id: s_late, customer_id: late, plan_id: tiered, started_at: "2026-06-01T00:00:00Z"}
"""


def close(as_of: str) -> None:
    run_dag("billing_cycle_close", as_of, as_of=as_of)


def invoices() -> list[tuple]:
    return query("select invoice_number, period_start::date::text, subtotal_minor, total_minor from billing.invoices order by 1")


def adjustments() -> list[tuple]:
    return query(
        "select invoices.invoice_number, lines.description, lines.amount_minor from billing.invoice_lines as lines"
        " join billing.invoices using (invoice_id) where lines.kind = 'adjustment' order by 1, lines.line_no"
    )


def test_late_usage_is_adjusted_once_on_the_next_invoice_at_the_marginal_tier(warehouse, tmp_path):
    reset_warehouse()
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG.replace("PRICE", "0.02"))
    apply_catalog(catalog)
    load_events(write_csv(tmp_path / "june.csv", usage("late", "api_call", [9_000], "2026-06-10", "june")), show_progress=False)
    close("2026-07-01T01:00:00Z")
    june_lines = query("select line_no, amount_minor from billing.invoice_lines order by 1")
    assert invoices() == [("INV-000001", "2026-06-01", 18_000, 18_000)]  # 9,000 × €0.02

    # 2,000 June calls arrive in July: June is now 11,000 calls = €200 + €10 = €210, €30 more
    late = usage("late", "api_call", [1_000, 1_000], "2026-06-28", "june-late") + usage(
        "late", "api_call", [500], "2026-07-10", "july")
    load_events(write_csv(tmp_path / "late.csv", late), show_progress=False)
    close("2026-08-01T01:00:00Z")
    close("2026-08-01T01:00:00Z")  # re-run: nothing twice
    assert invoices() == [
        ("INV-000001", "2026-06-01", 18_000, 18_000),
        ("INV-000002", "2026-07-01", 4_000, 4_000),  # 500 × €0.02 + €30.00 for June
    ]
    assert adjustments() == [("INV-000002", "Adjustment to INV-000001 (usage re-rated)", 3_000)]
    assert query("select line_no, amount_minor from billing.invoice_lines where invoice_id ="
                 " (select invoice_id from billing.invoices where invoice_number = 'INV-000001') order by 1") == june_lines

    # the operator fixes the first tier's price to €0.01: June and July are credited on August's
    # invoice, which has no usage, so the credit becomes a grant and the total stays 0
    catalog.write_text(CATALOG.replace("PRICE", "0.01"))
    apply_catalog(catalog)
    close("2026-09-01T01:00:00Z")
    assert adjustments()[1:] == [
        ("INV-000003", "Adjustment to INV-000001 (usage re-rated)", -10_000),  # €110 owed, €210 billed
        ("INV-000003", "Adjustment to INV-000002 (usage re-rated)", -500),     # €5 owed, €10 billed
        ("INV-000003", "Credit balance carried to grant carry_" + query(
            "select invoice_id from billing.invoices where invoice_number = 'INV-000003'")[0][0], 10_500),
    ]
    assert invoices()[2] == ("INV-000003", "2026-08-01", 0, 0)
    assert query("select customer_id, currency, amount from raw.credit_grants") == [("late", "EUR", 105)]
