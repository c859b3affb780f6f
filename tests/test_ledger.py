"""The ledger's rules, kept by the warehouse (SPEC §14): an entry balances, is posted once, and is
never edited."""

from __future__ import annotations

import psycopg
import pytest
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
