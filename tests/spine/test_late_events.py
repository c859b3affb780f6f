"""Usage that arrives after its period was invoiced is re-rated with the whole period (SPEC §6).

The difference lands as an adjustment line on the subscription's next invoice, naming the
original; the original is never touched. A credit larger than the next invoice becomes a system grant
(billing.credit_grants, never raw) that pays the customer's later invoices, from the same run on.
After a plan change the old subscription has no next invoice: the new subscription's carries it.
After a churn no invoice can: the difference is listed in billing_marts.fct_unbilled_adjustments.
"""

from __future__ import annotations

import pytest
from billing.catalog import apply_catalog
from billing.loading import load_events
from conftest import query, reset_warehouse, run_cli, run_dag

from spine.events import usage, write_csv

pytestmark = [pytest.mark.slow, pytest.mark.independent]

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
    return query("select invoice_number, period_start::date::text, subtotal_minor, total_minor"
                 " from billing.invoices order by 1")


def adjustments() -> list[tuple]:
    return query(
        "select invoices.invoice_number, lines.description, lines.amount_minor from billing.invoice_lines as lines"
        " join billing.invoices using (invoice_id) where lines.kind = 'adjustment' order by 1, lines.line_no"
    )


def test_credit_carried_by_an_invoice_pays_the_next_one_of_the_same_run_and_later_runs(warehouse, tmp_path):
    reset_warehouse()
    catalog = tmp_path / "catalog.yaml"
    with_grant = CATALOG + """
credit_grants:
  - {grant_id: welcome, customer_id: late, currency: EUR, amount: 5, granted_at: "2026-06-01T00:00:00Z"}
"""
    catalog.write_text(with_grant.replace("PRICE", "0.02"))
    apply_catalog(catalog)
    load_events(
        write_csv(tmp_path / "june.csv", usage("late", "api_call", [9_000], "2026-06-10", "june")),
        show_progress=False,
    )
    close("2026-07-01T01:00:00Z")
    assert invoices() == [("INV-000001", "2026-06-01", 18_000, 17_500)]  # 9,000 × €0.02, less the €5 welcome grant
    application_grants = query("select * from raw.credit_grants")

    # the first tier's price is fixed to €0.01: June is now €90, €90 less than billed. One run issues
    # July (no usage: the -€90 makes a €90 grant), August (nothing to pay) and September, whose
    # 3,000 calls (€30) the grant pays
    catalog.write_text(with_grant.replace("PRICE", "0.01"))
    apply_catalog(catalog)
    load_events(
        write_csv(tmp_path / "sept.csv", usage("late", "api_call", [3_000], "2026-09-10", "sept")),
        show_progress=False,
    )
    close("2026-10-01T01:00:00Z")
    close("2026-10-01T01:00:00Z")  # re-run: nothing twice
    july, september = number_to_id("INV-000002"), number_to_id("INV-000004")
    assert invoices() == [
        ("INV-000001", "2026-06-01", 18_000, 17_500),
        ("INV-000002", "2026-07-01", 0, 0),
        ("INV-000003", "2026-08-01", 0, 0),
        ("INV-000004", "2026-09-01", 3_000, 0),
    ]
    assert adjustments() == [
        ("INV-000002", "Adjustment to INV-000001 (usage re-rated)", -9_000),
        ("INV-000002", f"Credit balance carried to grant carry_{july}", 9_000),
    ]
    assert system_grants() == [("INV-000002", "late", "EUR", 90, "2026-08-01")]
    assert query("select * from raw.credit_grants") == application_grants
    assert query(
        "select grant_id, invoice_id, amount_minor from billing.credit_applications where invoice_id = %s", september
    ) == [(f"carry_{july}", september, 3_000)]

    # October's 1,000 calls (€10), issued by a later run, take €10 more of it: €50 are left
    load_events(
        write_csv(tmp_path / "oct.csv", usage("late", "api_call", [1_000], "2026-10-05", "oct")),
        show_progress=False,
    )
    close("2026-11-01T01:00:00Z")
    assert invoices()[4:] == [("INV-000005", "2026-10-01", 1_000, 0)]
    assert query(
        "select grants.grant_id, grants.granted_by, grants.amount_minor - sum(applications.amount_minor)"
        " from billing_intermediate.int_credit_grants__unioned as grants"
        " join billing.credit_applications as applications using (grant_id) group by 1, 2, grants.amount_minor"
        " order by 1"
    ) == [(f"carry_{july}", "system", 5_000), ("welcome", "application", 0)]
    assert query("select * from raw.credit_grants") == application_grants
    # in the ledger the carried €90 is credit the customer holds, €40 of it spent (€50 left, as above);
    # the €5 welcome grant is a promotion, an expense when spent
    assert query(
        "select account, sum(credit_minor - debit_minor) from billing.journal_lines"
        " where account in ('customer_credit', 'promotional_credit') group by 1 order by 1"
    ) == [("customer_credit", 5_000), ("promotional_credit", -500)]


# Three customers on one timeline of closes (June 16 and 20, July 1 twice, August 1 twice,
# September 1), each on plans of its own, so their price fixes touch no one else:
# - late: its late June usage is re-rated at the marginal tier onto July's invoice, once; a price
#   fix then credits June and July on August's invoice, whose credit is carried to a grant;
# - mover changes plan on June 16: its Starter subscription ends as the Growth one starts, so the
#   late usage of Starter's last period goes on Growth's next invoice;
# - gone leaves at the end of June: no invoice can carry its late usage, which is listed as unbilled.
TIMELINE = """
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
          - {up_to: 10000, unit_price: LATE_PRICE}
          - {up_to: null, unit_price: 0.01}
  - plan_id: starter
    name: Starter
    currency: EUR
    interval: month
    charges:
      - event_name: api_call
        pricing_model: graduated
        tiers:
          - {up_to: 10000, unit_price: STARTER_PRICE}
          - {up_to: null, unit_price: 0.01}
  - plan_id: growth
    name: Growth
    currency: EUR
    interval: month
    base_fee: 20
    charges:
      - {event_name: api_call, pricing_model: per_unit, unit_price: 0.005}
  - plan_id: standard
    name: Standard
    currency: EUR
    interval: month
    charges:
      - event_name: api_call
        pricing_model: graduated
        tiers:
          - {up_to: 10000, unit_price: 0.02}
          - {up_to: null, unit_price: 0.01}
customers:
  - {customer_id: late, name: Late Co, currency: EUR, collection_method: request_payment}
  - {customer_id: mover, name: Mover Co, currency: EUR, collection_method: request_payment}
  - {customer_id: gone, name: Gone Co, currency: EUR, collection_method: request_payment}
subscriptions:
  - {subscription_id: s_late, customer_id: late, plan_id: tiered, started_at: "2026-06-01T00:00:00Z"}
  - {subscription_id: s_starter, customer_id: mover, plan_id: starter, started_at: "2026-06-01T00:00:00Z",
     ended_at: "2026-06-16T00:00:00Z"}
  - {subscription_id: s_growth, customer_id: mover, plan_id: growth, started_at: "2026-06-16T00:00:00Z",
     billing_anchor_day: 1}
  - {subscription_id: s_gone, customer_id: gone, plan_id: standard, started_at: "2026-06-01T00:00:00Z",
     ended_at: "2026-07-01T00:00:00Z"}
"""


def test_late_usage_goes_once_on_the_next_invoice_of_the_subscription_or_its_successor_or_is_listed(
        warehouse, tmp_path):
    reset_warehouse()
    catalog = tmp_path / "catalog.yaml"

    def apply(late_price: str, starter_price: str) -> None:
        catalog.write_text(TIMELINE.replace("LATE_PRICE", late_price).replace("STARTER_PRICE", starter_price))
        apply_catalog(catalog)

    def load(name: str, *rows: list[tuple]) -> None:
        load_events(write_csv(tmp_path / f"{name}.csv", [row for part in rows for row in part]), show_progress=False)

    apply(late_price="0.02", starter_price="0.02")
    load("june", *(usage(customer, "api_call", [9_000], "2026-06-10", f"june-{customer}")
                   for customer in ("late", "mover", "gone")))

    close("2026-06-16T01:00:00Z")
    # s_starter's last period: 9,000 × €0.02
    assert invoices_of("mover") == [("s_starter", "2026-06-01", 18_000, 18_000)]
    starter_june = number_of("s_starter", "2026-06-01")

    # mover: 2,000 more Starter calls of June 12 arrive late, with 1,000 Growth calls. s_starter has no
    # next invoice; s_growth's first period has not closed: the adjustment waits
    load("mover-late", usage("mover", "api_call", [1_000, 1_000], "2026-06-12", "june-late-mover"),
         usage("mover", "api_call", [1_000], "2026-06-20", "growth"))
    close("2026-06-20T01:00:00Z")
    assert len(invoices_of("mover")) == 1
    assert query("select status, subscription_id, amount_minor from billing_intermediate.int_invoice_adjustments") == [
        ("waiting", "s_growth", 3_000)]
    assert query("select count(*) from billing_marts.fct_unbilled_adjustments") == [(0,)]

    close("2026-07-01T01:00:00Z")
    close("2026-07-01T01:00:00Z")  # re-run: nothing twice
    late_june, gone_june = number_of("s_late", "2026-06-01"), number_of("s_gone", "2026-06-01")
    june_lines = query("select line_no, amount_minor from billing.invoice_lines where invoice_id = %s",
                       number_to_id(late_june))
    assert invoices_of("late") == [("s_late", "2026-06-01", 18_000, 18_000)]  # 9,000 × €0.02
    assert invoices_of("gone") == [("s_gone", "2026-06-01", 18_000, 18_000)]
    # mover: June 1–16 is now 11,000 calls = €200 + €10 = €210, €30 more. s_growth's June 16–30:
    # base fee €20 × 15/30 days = €10, 1,000 × €0.005 = €5, and the €30 for s_starter's June
    assert invoices_of("mover") == [
        ("s_starter", "2026-06-01", 18_000, 18_000),
        ("s_growth", "2026-06-16", 4_500, 4_500),
    ]
    assert adjustments_of("mover") == [
        ("s_growth", "2026-06-16", f"Adjustment to {starter_june} (usage re-rated)", 3_000)]
    assert query(
        "select invoices.subscription_id, lines.detail ->> 'original_invoice_id',"
        " lines.detail ->> 'original_subscription_id'"
        " from billing.invoice_lines as lines join billing.invoices using (invoice_id)"
        " where lines.kind = 'adjustment'"
    ) == [("s_growth", number_to_id(starter_june), "s_starter")]
    assert query("select count(*) from billing_intermediate.int_invoice_adjustments") == [(0,)]

    # late: 2,000 June calls arrive in July: June is now 11,000 calls = €200 + €10 = €210, €30 more;
    # gone's subscription ended with June: its 2,000 late calls are €30 more that no invoice can carry
    load("july-late", usage("late", "api_call", [1_000, 1_000], "2026-06-28", "june-late-late"),
         usage("late", "api_call", [500], "2026-07-10", "july-late"),
         usage("gone", "api_call", [1_000, 1_000], "2026-06-28", "june-late-gone"))
    # mover: the operator fixes Starter's first tier to €0.01: June 1–16 is €110, €100 less than billed
    # and adjusted. July's Growth invoice (€20 base fee, no usage) cannot absorb it: total 0, €80 granted
    apply(late_price="0.02", starter_price="0.01")
    close("2026-08-01T01:00:00Z")
    close("2026-08-01T01:00:00Z")  # re-run: nothing twice

    assert invoices_of("late") == [
        ("s_late", "2026-06-01", 18_000, 18_000),
        ("s_late", "2026-07-01", 4_000, 4_000),  # 500 × €0.02 + €30.00 for June
    ]
    assert adjustments_of("late") == [("s_late", "2026-07-01", f"Adjustment to {late_june} (usage re-rated)", 3_000)]
    assert query("select line_no, amount_minor from billing.invoice_lines where invoice_id = %s",
                 number_to_id(late_june)) == june_lines

    growth_july = number_of("s_growth", "2026-07-01")
    assert invoices_of("mover")[2:] == [("s_growth", "2026-07-01", 0, 0)]
    assert adjustments_of("mover")[1:] == [
        ("s_growth", "2026-07-01", f"Adjustment to {starter_june} (usage re-rated)", -10_000),
        ("s_growth", "2026-07-01", f"Credit balance carried to grant carry_{number_to_id(growth_july)}", 8_000),
    ]
    assert query("select status from billing.invoices where invoice_number = %s", growth_july) == [("paid",)]
    assert system_grants() == [(growth_july, "mover", "EUR", 80, "2026-08-01")]
    # nothing waits: mover's differences are carried, gone's is unbilled
    assert query("select status, count(*) from billing_intermediate.int_invoice_adjustments group by 1") == [
        ("unbilled", 1)]

    assert invoices_of("gone") == [("s_gone", "2026-06-01", 18_000, 18_000)]
    assert adjustments_of("gone") == []
    assert query(
        "select original_invoice_id, original_invoice_number, customer_id, subscription_id, currency,"
        " rerated_minor, invoiced_minor, adjusted_minor, amount_minor, reason"
        " from billing_marts.fct_unbilled_adjustments"
    ) == [(number_to_id(gone_june), gone_june, "gone", "s_gone", "EUR", 21_000, 18_000, 0, 3_000,
           "no_later_subscription")]
    listed = run_cli("invoices", "list").stdout
    assert f"unbilled adjustment to {gone_june} (gone): EUR 30.00, no_later_subscription" in listed

    # late: the operator fixes the first tier's price to €0.01: June and July are credited on August's
    # invoice, which has no usage, so the credit becomes a grant and the total stays 0
    apply(late_price="0.01", starter_price="0.01")
    close("2026-09-01T01:00:00Z")
    late_july, late_august = number_of("s_late", "2026-07-01"), number_of("s_late", "2026-08-01")
    assert adjustments_of("late")[1:] == [
        ("s_late", "2026-08-01", f"Adjustment to {late_june} (usage re-rated)", -10_000),  # €110 owed, €210 billed
        ("s_late", "2026-08-01", f"Adjustment to {late_july} (usage re-rated)", -500),     # €5 owed, €10 billed
        ("s_late", "2026-08-01", f"Credit balance carried to grant carry_{number_to_id(late_august)}", 10_500),
    ]
    assert invoices_of("late")[2] == ("s_late", "2026-08-01", 0, 0)
    assert system_grants() == sorted([(growth_july, "mover", "EUR", 80, "2026-08-01"),
                                      (late_august, "late", "EUR", 105, "2026-09-01")])
    assert query("select count(*) from raw.credit_grants") == [(0,)]


def invoices_of(customer_id: str) -> list[tuple]:
    return query("select subscription_id, period_start::date::text, subtotal_minor, total_minor"
                 " from billing.invoices where customer_id = %s order by invoice_number", customer_id)


def adjustments_of(customer_id: str) -> list[tuple]:
    return query(
        "select invoices.subscription_id, invoices.period_start::date::text, lines.description, lines.amount_minor"
        " from billing.invoice_lines as lines join billing.invoices using (invoice_id)"
        " where lines.kind = 'adjustment' and invoices.customer_id = %s"
        " order by invoices.invoice_number, lines.line_no",
        customer_id,
    )


def number_of(subscription_id: str, period_start: str) -> str:
    return query("select invoice_number from billing.invoices where subscription_id = %s"
                 " and period_start::date = %s::date", subscription_id, period_start)[0][0]

def system_grants() -> list[tuple]:
    """billing.credit_grants as (origin invoice number, customer, currency, amount, granted_at UTC date)."""
    return query(
        "select invoices.invoice_number, grants.customer_id, grants.currency, grants.amount,"
        " (grants.granted_at at time zone 'UTC')::date::text from billing.credit_grants as grants"
        " join billing.invoices on invoices.invoice_id = grants.origin_invoice_id"
        " where grants.grant_id = 'carry_' || invoices.invoice_id order by 1"
    )


def number_to_id(invoice_number: str) -> str:
    return query("select invoice_id from billing.invoices where invoice_number = %s", invoice_number)[0][0]
