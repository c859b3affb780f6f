"""SPEC §12 end to end: coupons, minimum commitments and taxes, through the cycle close.

One close (as of 2026-05-01 01:00Z) issues every worked example of the README at once: four
monthly periods of the 20 % coupon's customer (January–April) and April for each other customer.
Every amount below is computed by hand; the PDF of a taxed invoice is read back with pdftotext.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from billing.catalog import CatalogError, apply_catalog
from billing.invoice_pdfs import write_invoice_pdf
from billing.quality.billing_gates import check_ledger
from conftest import query, reset_warehouse, run_cli, run_dag

pytestmark = pytest.mark.slow

CATALOG = Path(__file__).with_name("invoice_math_catalog.yaml")
CLOSE = "2026-05-01T01:00:00Z"


@pytest.fixture(scope="module")
def closed(warehouse, tmp_path_factory):
    reset_warehouse()
    apply_catalog(CATALOG)
    # in this process: a `billing close-cycles` would start Airflow, dbt and GX again
    run_dag("billing_cycle_close", CLOSE, as_of=CLOSE)
    return tmp_path_factory.mktemp("invoice_math")


def invoices() -> dict[tuple[str, str], tuple]:
    rows = query(
        "select subscription_id, period_start::date::text, currency, subtotal_minor, discount_minor,"
        " minimum_minor, tax_minor, tax_inclusive_minor, reverse_charge, credits_minor, total_minor, status"
        " from billing.invoices"
    )
    return {(row[0], row[1]): row[2:] for row in rows}


def lines(subscription_id: str, period_start: str) -> list[tuple]:
    return query(
        "select lines.kind, lines.amount_minor, lines.adds_to_total, lines.detail"
        " from billing.invoice_lines as lines"
        " inner join billing.invoices using (invoice_id)"
        " where invoices.subscription_id = %s and invoices.period_start::date = %s::date"
        " order by lines.line_no",
        subscription_id, period_start,
    )


def test_worked_examples_bill_exactly(closed):
    issued = invoices()
    # currency, subtotal, discount, minimum, tax, inclusive tax, reverse charge, credits, total, status
    assert issued == {
        # 20 % for 3 periods on 249.00: 199.20 three times, then 249.00
        ("s_coupon", "2026-01-01"): ("USD", 24900, 4980, 0, 0, 0, False, 0, 19920, "open"),
        ("s_coupon", "2026-02-01"): ("USD", 24900, 4980, 0, 0, 0, False, 0, 19920, "open"),
        ("s_coupon", "2026-03-01"): ("USD", 24900, 4980, 0, 0, 0, False, 0, 19920, "open"),
        ("s_coupon", "2026-04-01"): ("USD", 24900, 0, 0, 0, 0, False, 0, 24900, "open"),
        # a 500.00 minimum on a 380.00 period: 120.00 more
        ("s_committed", "2026-04-01"): ("USD", 38000, 0, 12000, 0, 0, False, 0, 50000, "open"),
        # 19 % exclusive VAT on 600.00: 114.00, 714.00 in all
        ("s_berlin", "2026-04-01"): ("EUR", 60000, 0, 0, 11400, 0, False, 0, 71400, "open"),
        # credits come last, on the amount with tax: 714.00 - 700.00
        ("s_credited", "2026-04-01"): ("EUR", 60000, 0, 0, 11400, 0, False, 70000, 1400, "open"),
        # 10 % inclusive GST in 110.00: 10.00 shown, the total stays 110.00
        ("s_sydney", "2026-04-01"): ("AUD", 11000, 0, 0, 0, 1000, False, 0, 11000, "open"),
        # reverse charge: no tax, stated
        ("s_paris", "2026-04-01"): ("EUR", 60000, 0, 0, 0, 0, True, 0, 60000, "open"),
        # a EUR amount coupon does not apply to a USD invoice
        ("s_euro_coupon", "2026-04-01"): ("USD", 24900, 0, 0, 0, 0, False, 0, 24900, "open"),
        # 1,000.00 off a 380.00 invoice: capped at 380.00; nothing left, so no minimum and no tax
        ("s_free", "2026-04-01"): ("USD", 38000, 38000, 0, 0, 0, False, 0, 0, "paid"),
    }

    [base_fee, discount] = lines("s_coupon", "2026-03-01")
    assert base_fee[:3] == ("base_fee", 24900, True)
    assert discount[:3] == ("discount", -4980, True)
    assert discount[3] == {"coupon_id": "twenty_3", "redemption_id": "r_coupon", "percent_off": 20,
                           "period_no": 3, "remaining_minor": 24900}
    assert [line[0] for line in lines("s_coupon", "2026-04-01")] == ["base_fee"]
    assert [line[:3] for line in lines("s_committed", "2026-04-01")] == [
        ("base_fee", 38000, True), ("minimum_commitment", 12000, True)]
    assert lines("s_berlin", "2026-04-01")[1] == ("tax", 11400, True, {
        "tax_rate_id": "vat_de", "display_name": "VAT", "jurisdiction": "DE", "percentage": 19,
        "inclusive": False, "taxable_minor": 60000})
    assert [line[:3] for line in lines("s_credited", "2026-04-01")] == [
        ("base_fee", 60000, True), ("tax", 11400, True), ("credit", -70000, True)]
    assert [line[:3] for line in lines("s_sydney", "2026-04-01")] == [("base_fee", 11000, True), ("tax", 1000, False)]
    assert [line[0] for line in lines("s_paris", "2026-04-01")] == ["base_fee"]
    assert [line[:3] for line in lines("s_free", "2026-04-01")] == [
        ("base_fee", 38000, True), ("discount", -38000, True)]

    # the marts: revenue net of discounts and of the tax inclusive prices contain; tax by jurisdiction
    assert query(
        "select customer_id, service_month::text, revenue_minor, discounts_minor, minimum_commitment_minor,"
        " inclusive_tax_minor from billing_marts.fct_revenue"
        " where customer_id in ('coupon_co', 'sydney_pty', 'committed_co', 'free_co')"
        " order by customer_id, service_month"
    ) == [
        ("committed_co", "2026-04-01", 50000, 0, 12000, 0),
        ("coupon_co", "2026-01-01", 19920, 4980, 0, 0),
        ("coupon_co", "2026-02-01", 19920, 4980, 0, 0),
        ("coupon_co", "2026-03-01", 19920, 4980, 0, 0),
        ("coupon_co", "2026-04-01", 24900, 0, 0, 0),
        ("free_co", "2026-04-01", 0, 38000, 0, 0),
        ("sydney_pty", "2026-04-01", 10000, 0, 0, 1000),
    ]
    assert query(
        "select jurisdiction, currency, service_month::text, tax_rate_id, inclusive, count_invoices,"
        " taxable_minor, tax_minor from billing_marts.fct_tax_collected order by jurisdiction"
    ) == [
        ("AU", "AUD", "2026-04-01", "gst_au", True, 1, 11000, 1000),
        ("DE", "EUR", "2026-04-01", "vat_de", False, 2, 120000, 22800),
    ]


def test_taxed_invoices_print_their_tax(closed):
    berlin = _pdf_text("s_berlin", closed)
    assert "VAT 19%" in berlin
    assert "19% VAT (DE) on EUR 600.00" in berlin
    assert "EUR 114.00" in berlin
    assert "Total EUR 714.00" in " ".join(berlin.split())
    sydney = " ".join(_pdf_text("s_sydney", closed).split())
    assert "GST 10% (included)" in sydney
    assert "incl. AUD 10.00" in sydney
    assert "Total AUD 110.00" in sydney
    paris = " ".join(_pdf_text("s_paris", closed).split())
    assert "Reverse charge: no VAT charged; the customer accounts for the VAT due." in paris
    assert "Total EUR 600.00" in paris


def test_bad_coupons_and_tax_settings_are_refused_with_their_reasons(closed, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "coupons:\n"
        "  - {coupon_id: both, name: Both, percent_off: 10, amount_off: 5, currency: USD, duration: once}\n"
        "  - {coupon_id: no_currency, name: No currency, amount_off: 5, duration: once}\n"
        "  - {coupon_id: no_length, name: No length, percent_off: 10, duration: repeating}\n"
        "customers:\n"
        "  - {customer_id: taxless, name: Taxless, currency: USD, collection_method: request_payment,"
        " tax_rate_ids: [vat_xx]}\n"
    )
    refused = _refusal(rules)
    for place in ("coupons[0] (line 2): rule coupon_has_one_discount",
                  "coupons[1] (line 3): rule coupon_has_one_discount",
                  "coupons[2] (line 4): rule coupon_has_one_discount",
                  "customers[0] (line 6): rule tax_rates_exist"):
        assert place in refused
    values = tmp_path / "values.yaml"
    values.write_text(
        "coupons:\n"
        "  - {coupon_id: too_much, name: Too much, percent_off: 150, duration: once}\n"
    )
    assert "coupons[0].percent_off (line 2)" in _refusal(values)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(
        "coupon_redemptions:\n"
        "  - {redemption_id: r_x, coupon_id: nope, customer_id: coupon_co, redeemed_at: '2026-01-01T00:00:00Z'}\n"
    )
    assert "coupon_redemptions[0].coupon_id (line 2): unknown coupon 'nope'" in _refusal(unknown)
    # nothing of them was written
    assert query("select count(*) from raw.coupons where coupon_id in ('both', 'no_currency', 'no_length', 'too_much')"
                 " union all select count(*) from raw.customers where customer_id = 'taxless'") == [(0,), (0,)]


def test_the_books_hold_discounts_and_taxes_and_a_credit_note_takes_its_tax_back_pro_rata(closed):
    def issue_entry(subscription_id: str, period_start: str = "2026-04-01") -> list[tuple]:
        return query(
            "select lines.account, lines.debit_minor, lines.credit_minor from billing.journal_lines as lines"
            " join billing.journal_entries as entries using (entry_id) join billing.invoices using (invoice_id)"
            " where invoices.subscription_id = %s and invoices.period_start::date = %s::date"
            " and entries.kind = 'invoice_issued' order by lines.line_no", subscription_id, period_start)

    # the coupon is a discount, debited; exclusive VAT is owed; inclusive GST moves out of revenue
    assert issue_entry("s_coupon", "2026-01-01") == [
        ("accounts_receivable", 19920, 0), ("revenue:discounts", 4980, 0), ("revenue:subscription", 0, 24900)]
    assert issue_entry("s_berlin") == [
        ("accounts_receivable", 71400, 0), ("revenue:subscription", 0, 60000), ("tax_payable", 0, 11400)]
    assert issue_entry("s_sydney") == [
        ("accounts_receivable", 11000, 0), ("revenue:subscription", 0, 10000), ("tax_payable", 0, 1000)]

    # EUR 119.00 off Berlin's EUR 714.00: 119 × 114 / 714 = 19.00 of it is VAT, 100.00 the base fee
    [(number,)] = query("select invoice_number from billing.invoices where subscription_id = 's_berlin'")
    run_cli("credit-notes", "create", number, "--amount", "119", "--reason", "order_change", "--method", "reduce")
    assert query(
        "select lines.account, lines.debit_minor, lines.credit_minor from billing.journal_lines as lines"
        " join billing.journal_entries as entries using (entry_id) join billing.invoices using (invoice_id)"
        " where invoices.subscription_id = 's_berlin' and entries.kind = 'credit_note' order by lines.line_no"
    ) == [("revenue:subscription", 10000, 0), ("tax_payable", 1900, 0), ("accounts_receivable", 0, 11900)]
    assert query("select amount_remaining_minor, receivable_minor from billing.invoice_balances"
                 " join billing.invoices using (invoice_id) where subscription_id = 's_berlin'") == [(59500, 59500)]
    assert query("select revenue_minor, credit_notes_minor from billing_marts.fct_revenue"
                 " where customer_id = 'berlin_gmbh'") == [(50000, 10000)]
    assert query("select tax_invoiced_minor, tax_credited_minor, tax_minor from billing_marts.fct_tax_collected"
                 " where jurisdiction = 'DE'") == [(22800, 1900, 20900)]  # Berlin's and Credited's VAT
    # every entry balances and every receivable is what remains to pay
    assert check_ledger(as_of=CLOSE).success


def _refusal(path: Path) -> str:
    """What `billing catalog apply` says of a refused file (the command prints this error)."""
    with pytest.raises(CatalogError) as refused:
        apply_catalog(path)
    return str(refused.value)


def _pdf_text(subscription_id: str, folder: Path) -> str:
    [(number,)] = query("select invoice_number from billing.invoices where subscription_id = %s", subscription_id)
    pdf = write_invoice_pdf(number, output=folder / f"{number}.pdf")
    return subprocess.run(["pdftotext", "-layout", str(pdf.path), "-"], capture_output=True, text=True,
                           check=True).stdout
