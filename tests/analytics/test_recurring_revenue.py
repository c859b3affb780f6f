"""MRR, its movements and the subscription metrics (SPEC §11) on a real warehouse.

Three USD customers, two closes. grower moves from pro ($10 a month) to scale ($50) at the turn of
June and July; leaver cancels on July 15; yearly pays $1,000.50 a year from June 10, $83.375 a
month, shown as 8,338 cents. Usage is $0.01 a call. The marts are views: `billing rebuild`, the
close and the hourly pipeline build them (the first two with their data tests: the movements
reconcile) for the run's as_of, August 2026 here.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from billing import transform
from billing.catalog import apply_catalog
from billing.loading import load_events
from conftest import query, reset_warehouse, run_dag
from spine.catalogs import PRO_PLAN
from spine.events import usage, write_csv

pytestmark = pytest.mark.slow

AS_OF = "2026-08-01T01:00:00Z"

CATALOG = PRO_PLAN + """
  - plan_id: scale
    name: Scale
    currency: USD
    interval: month
    base_fee: 50
    charges:
      - {event_name: api_call, pricing_model: per_unit, unit_price: 0.01}
  - plan_id: annual
    name: Annual
    currency: USD
    interval: year
    base_fee: 1000.50
customers:
  - {customer_id: grower, name: Grower, currency: USD, collection_method: request_payment}
  - {customer_id: leaver, name: Leaver, currency: USD, collection_method: request_payment}
  - {customer_id: yearly, name: Yearly, currency: USD, collection_method: request_payment}
subscriptions:
  - {subscription_id: s_grow, customer_id: grower, plan_id: pro, started_at: "2026-06-01T00:00:00Z"}
  - {subscription_id: s_leave, customer_id: leaver, plan_id: pro, started_at: "2026-06-01T00:00:00Z"}
  - {subscription_id: s_year, customer_id: yearly, plan_id: annual, started_at: "2026-06-10T00:00:00Z"}
"""

# In July the application records the plan change and the cancellation.
JULY_CHANGES = """
subscriptions:
  - {subscription_id: s_grow, customer_id: grower, plan_id: pro, started_at: "2026-06-01T00:00:00Z",
     ended_at: "2026-07-01T00:00:00Z"}
  - {subscription_id: s_scale, customer_id: grower, plan_id: scale, started_at: "2026-07-01T00:00:00Z"}
  - {subscription_id: s_leave, customer_id: leaver, plan_id: pro, started_at: "2026-06-01T00:00:00Z",
     ended_at: "2026-07-15T00:00:00Z"}
"""


def close(as_of: str) -> None:
    run_dag("billing_cycle_close", as_of, as_of=as_of)


@pytest.fixture(scope="module")
def closed(warehouse, tmp_path_factory):
    reset_warehouse()
    folder = tmp_path_factory.mktemp("recurring_revenue")
    (folder / "catalog.yaml").write_text(CATALOG)
    apply_catalog(folder / "catalog.yaml")
    june = usage("grower", "api_call", [1_000], "2026-06-10", "g-june") + usage(
        "leaver", "api_call", [300], "2026-06-10", "l-june")
    load_events(write_csv(folder / "june.csv", june), show_progress=False)
    close("2026-07-01T01:00:00Z")

    (folder / "july.yaml").write_text(JULY_CHANGES)
    apply_catalog(folder / "july.yaml")
    july = usage("grower", "api_call", [2_000], "2026-07-10", "g-july") + usage(
        "leaver", "api_call", [100], "2026-07-05", "l-july")
    load_events(write_csv(folder / "july.csv", july), show_progress=False)
    close(AS_OF)

    # every model and data test, the reconciliations among them
    transform.rebuild(as_of=AS_OF, grace="1 hour")
    return folder


def test_the_closes_invoiced_what_mrr_reads(closed):
    assert query(
        "select subscription_id, period_start::date::text, lines.kind, lines.amount_minor"
        " from billing.invoices join billing.invoice_lines as lines using (invoice_id)"
        " order by 1, 2, lines.line_no"
    ) == [
        ("s_grow", "2026-06-01", "base_fee", 1_000), ("s_grow", "2026-06-01", "usage", 1_000),
        # [Jul 1, Jul 15) is 14 of July's 31 days: $4.516… → 452
        ("s_leave", "2026-06-01", "base_fee", 1_000), ("s_leave", "2026-06-01", "usage", 300),
        ("s_leave", "2026-07-01", "base_fee", 452), ("s_leave", "2026-07-01", "usage", 100),
        ("s_scale", "2026-07-01", "base_fee", 5_000), ("s_scale", "2026-07-01", "usage", 2_000),
    ]


def test_mrr_per_customer_and_month_with_its_movement(closed):
    assert query(
        "select customer_id, month::text, base_fee_mrr_minor, usage_mrr_minor, mrr_minor, mrr_major,"
        " previous_mrr_minor, mrr_movement"
        " from billing_marts.fct_mrr order by 1, 2"
    ) == [
        # pro's $10 + June's 1,000 calls
        ("grower", "2026-06-01", 1_000, 1_000, 2_000, Decimal("20.00"), 0, "new"),
        # scale is in force at the end of July: $50 + 2,000 calls
        ("grower", "2026-07-01", 5_000, 2_000, 7_000, Decimal("70.00"), 2_000, "expansion"),
        # August's usage is not invoiced yet
        ("grower", "2026-08-01", 5_000, 0, 5_000, Decimal("50.00"), 7_000, "contraction"),
        ("leaver", "2026-06-01", 1_000, 300, 1_300, Decimal("13.00"), 0, "new"),
        # cancelled on July 15: no base fee at the end of July, only the usage of its last period
        ("leaver", "2026-07-01", 0, 100, 100, Decimal("1.00"), 1_300, "contraction"),
        ("leaver", "2026-08-01", 0, 0, 0, Decimal("0.00"), 100, "churn"),
        # $1,000.50 ÷ 12 = $83.375, rounded once, half away from zero
        ("yearly", "2026-06-01", 8_338, 0, 8_338, Decimal("83.38"), 0, "new"),
        ("yearly", "2026-07-01", 8_338, 0, 8_338, Decimal("83.38"), 8_338, None),
        ("yearly", "2026-08-01", 8_338, 0, 8_338, Decimal("83.38"), 8_338, None),
    ]


def test_movements_reconcile_month_to_month(closed):
    assert query(
        "select month::text, currency, opening_mrr_minor, new_mrr_minor, reactivation_mrr_minor,"
        " expansion_mrr_minor, contraction_mrr_minor, churn_mrr_minor, closing_mrr_minor,"
        " closing_mrr_major, customers"
        " from billing_marts.fct_mrr_movements order by 1"
    ) == [
        ("2026-06-01", "USD", 0, 11_638, 0, 0, 0, 0, 11_638, Decimal("116.38"), 3),
        # 11,638 + 5,000 − 1,200
        ("2026-07-01", "USD", 11_638, 0, 0, 5_000, 1_200, 0, 15_438, Decimal("154.38"), 3),
        # 15,438 − 2,000 − 100
        ("2026-08-01", "USD", 15_438, 0, 0, 0, 2_000, 100, 13_338, Decimal("133.38"), 2),
    ]


def test_churn_rate_arpa_and_ltv(closed):
    assert query(
        "select month::text, customers, churned_customers, logo_churn_rate, logo_churn_rate_3m_average,"
        " arpa_minor, arpa_major, ltv_minor, ltv_major"
        " from billing_marts.fct_subscription_metrics_monthly order by 1"
    ) == [
        # no customers before June: no churn rate, no LTV; ARPA $116.38 ÷ 3 = $38.793…
        ("2026-06-01", 3, 0, None, None, 3_879, Decimal("38.79"), None, None),
        # nobody churned: the average is 0, so no LTV
        ("2026-07-01", 3, 0, 0, 0, 5_146, Decimal("51.46"), None, None),
        # 1 of 3 churned; average (0 + 1/3) ÷ 2 = 1/6; LTV = $66.69 × 6
        ("2026-08-01", 2, 1, Decimal("0.3333333333333333333333333333333333333333"), pytest.approx(Decimal(1) / 6),
         6_669, Decimal("66.69"), 40_014, Decimal("400.14")),
    ]


def test_the_marts_outlive_the_hourly_pipeline_and_the_close(closed):
    # dbt replaces the staging views they read with `drop ... cascade`; both runs build them again
    movements = "select * from billing_marts.fct_mrr_movements order by 1, 2"
    before = query(movements)
    transform.update_usage(as_of=AS_OF, grace="1 hour")
    assert query(movements) == before
    close(AS_OF)  # a re-run: nothing new to invoice
    assert query(movements) == before
    assert query("select count(*) from billing_marts.fct_subscription_metrics_monthly") == [(3,)]
