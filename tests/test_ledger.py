"""The ledger's rules, kept by the warehouse (SPEC §14): an entry balances, is posted once, and is
never edited."""

from __future__ import annotations

import psycopg
import pytest
from billing.bookkeeping import issue_entry, pro_rata
from billing.ledger import JournalEntry, credit, debit, post
from billing.warehouse import connect
from conftest import query

pytestmark = pytest.mark.independent


def _entry(entry_id: str, *postings) -> JournalEntry:
    return JournalEntry(entry_id=entry_id, kind="test", customer_id="cus_ledger", currency="USD",
                        description="test entry", postings=postings)


def test_an_entry_is_posted_once_and_an_unbalanced_or_edited_one_is_refused(warehouse):
    payment = _entry("ledger_test_payment", debit("cash", 24900), credit("accounts_receivable", 24900))
    with connect() as connection:
        assert post(connection, [payment, _entry("ledger_test_nothing", debit("cash", 0))]) == 1
        assert post(connection, [payment]) == 0  # a re-run posts nothing twice
    assert query("select account, debit_minor, credit_minor from billing.journal_lines"
                 " where entry_id = 'ledger_test_payment' order by line_no") == [
        ("cash", 24900, 0), ("accounts_receivable", 0, 24900)]
    assert query("select count(*) from billing.journal_entries where entry_id = 'ledger_test_nothing'") == [(0,)]

    with pytest.raises(psycopg.errors.CheckViolation, match="unbalanced journal entries: ledger_test_unbalanced"):
        with connect() as connection:
            post(connection, [_entry("ledger_test_unbalanced", debit("cash", 100), credit("accounts_receivable", 99))])
    assert query("select count(*) from billing.journal_entries where entry_id = 'ledger_test_unbalanced'") == [(0,)]

    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        with connect() as connection:
            connection.execute("update billing.journal_lines set debit_minor = 1 where entry_id = 'ledger_test_payment'"
                               " and line_no = 1")


def _issued(*lines: tuple) -> list[tuple]:
    """The invoice_issued postings of an invoice with these (kind, amount_minor[, detail]) lines, but
    zeros (`post` leaves them out)."""
    rows = [{"kind": kind, "amount_minor": amount, "detail": detail[0] if detail else None,
             "adds_to_total": not (detail and detail[0].get("inclusive"))}
            for kind, amount, *detail in lines]
    invoice = {"invoice_id": "in_1", "invoice_number": "INV-000001", "customer_id": "cus_1", "currency": "EUR",
               "issued_at": None, "receivable_minor": sum(
                   row["amount_minor"] for row in rows if row["adds_to_total"])}
    entry = issue_entry(invoice, rows)
    assert entry.entry_id == "invoice_issued:in_1"
    return [(posting.account, posting.debit_minor, posting.credit_minor) for posting in entry.postings
            if posting.debit_minor or posting.credit_minor]


def test_an_issued_invoice_credits_each_line_s_account_by_kind():
    # €249 + €100 usage, a 20% coupon (−€69.80), 19% exclusive VAT on €279.20 (€53.048 → €53.05)
    assert _issued(("base_fee", 24900), ("usage", 10000), ("discount", -6980),
                   ("tax", 5305, {"inclusive": False})) == [
        ("accounts_receivable", 33225, 0),
        ("revenue:discounts", 6980, 0),
        ("revenue:subscription", 0, 24900),
        ("revenue:usage", 0, 10000),
        ("tax_payable", 0, 5305),
    ]
    # a $500 minimum on a $380 period; a re-rated adjustment of −$1
    assert _issued(("base_fee", 30000), ("usage", 8000), ("adjustment", -100), ("minimum_commitment", 12100)) == [
        ("accounts_receivable", 50000, 0),
        ("revenue:subscription", 0, 42100),
        ("revenue:usage", 0, 7900),
    ]
    # charges of $10 against a $30 re-rated credit: the $20 left is carried to a grant the customer holds
    # (nothing receivable)
    assert _issued(("base_fee", 1000), ("adjustment", -3000), ("adjustment", 2000, {"grant_id": "carry_in_1"})) == [
        ("customer_credit", 0, 2000),
        ("revenue:subscription", 0, 1000),
        ("revenue:usage", 3000, 0),
    ]


def test_an_inclusive_tax_moves_from_revenue_to_tax_payable_pro_rata():
    # 10% GST inside $110 + $55: 165 × 10/110 = $15, of which 110/165 from the base fee, 55/165 from usage
    assert _issued(("base_fee", 11000), ("usage", 5500), ("tax", 1500, {"inclusive": True})) == [
        ("accounts_receivable", 16500, 0),
        ("revenue:subscription", 0, 10000),
        ("revenue:usage", 0, 5000),
        ("tax_payable", 0, 1500),
    ]
    # after a discount: taxable 100.00 + 3.33 − 10.33 = 93.00, tax round(93 × 10/110) = 8.45, shared
    # 9.086 → 9.09, 0.3026 → 0.30, −0.9386 → −0.94 (the discount shrinks by its own tax)
    assert _issued(("base_fee", 10000), ("usage", 333), ("discount", -1033), ("tax", 845, {"inclusive": True})) == [
        ("accounts_receivable", 9300, 0),
        ("revenue:discounts", 939, 0),
        ("revenue:subscription", 0, 9091),
        ("revenue:usage", 0, 303),
        ("tax_payable", 0, 845),
    ]
    # what rounding leaves goes to the largest share
    assert pro_rata(100, {"a": 1, "b": 2, "c": 1}) == {"a": 25, "b": 50, "c": 25}
    assert pro_rata(100, {"a": 1, "b": 1, "c": 1}) == {"a": 34, "b": 33, "c": 33}
    assert pro_rata(-5, {"a": 3, "b": -1}) == {"a": -8, "b": 3}


def test_a_line_kind_without_an_account_is_refused_by_name():
    with pytest.raises(ValueError, match="INV-000001: no ledger account for a 'shipping' line"):
        _issued(("shipping", 500))
