"""The ledger (SPEC §14): a balanced double-entry journal entry for every money event.

The code that records a money event posts its entry in the same transaction, with `post`. An
entry's id derives from the event it records (e.g. the invoice id for `invoice_issued`), so a re-run
or a resumed crash posts nothing twice. The warehouse refuses an entry whose debits and credits
differ (billing.journal_lines' trigger) and any edit of a posted one; accounts are those of
billing.ledger_accounts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

# New entries, skipping those already posted; returns the ids written.
INSERT_ENTRIES = """
insert into billing.journal_entries (
    entry_id, kind, invoice_id, customer_id, currency, description, posted_at
)
select entry_id, kind, invoice_id, customer_id, currency, description, coalesce(posted_at, now())
from unnest(
    %(entry_ids)s::text [], %(kinds)s::text [], %(invoice_ids)s::text [], %(customer_ids)s::text [],
    %(currencies)s::text [], %(descriptions)s::text [], %(posted_ats)s::timestamptz []
) as entries (entry_id, kind, invoice_id, customer_id, currency, description, posted_at)
on conflict (entry_id) do nothing
returning entry_id
"""

# Every line of the new entries in one statement: the balance trigger sees each entry whole.
INSERT_LINES = """
insert into billing.journal_lines (entry_id, line_no, account, debit_minor, credit_minor)
select * from unnest(
    %(entry_ids)s::text [], %(line_nos)s::int [], %(accounts)s::text [], %(debits)s::bigint [],
    %(credits)s::bigint []
)
"""


@dataclass(frozen=True)
class Posting:
    """One line of an entry: an amount on one side of one account."""

    account: str
    debit_minor: int = 0
    credit_minor: int = 0


@dataclass(frozen=True)
class JournalEntry:
    entry_id: str
    kind: str
    customer_id: str
    currency: str
    description: str
    postings: tuple[Posting, ...]
    invoice_id: str | None = None
    # when the event happened; None: now (the posting transaction's time)
    posted_at: datetime | None = None


def debit(account: str, amount_minor: int) -> Posting:
    """`amount_minor` on the debit side; a negative amount is a credit of its opposite."""
    if amount_minor >= 0:
        return Posting(account, debit_minor=amount_minor)
    return Posting(account, credit_minor=-amount_minor)


def credit(account: str, amount_minor: int) -> Posting:
    """`amount_minor` on the credit side; a negative amount is a debit of its opposite."""
    return debit(account, -amount_minor)


def post(connection, entries: Iterable[JournalEntry]) -> int:
    """Post the entries not posted yet, in the caller's transaction; returns how many were new.

    Zero postings are left out, and an entry with nothing left is not posted (a zero invoice moves
    no money).
    """
    entries = [entry for entry in entries if any(_nonzero(entry.postings))]
    if not entries:
        return 0
    new_ids = {entry_id for (entry_id,) in connection.execute(INSERT_ENTRIES, {
        "entry_ids": [entry.entry_id for entry in entries],
        "kinds": [entry.kind for entry in entries],
        "invoice_ids": [entry.invoice_id for entry in entries],
        "customer_ids": [entry.customer_id for entry in entries],
        "currencies": [entry.currency for entry in entries],
        "descriptions": [entry.description for entry in entries],
        "posted_ats": [entry.posted_at for entry in entries],
    }).fetchall()}
    lines = [
        (entry.entry_id, line_no, posting)
        for entry in entries if entry.entry_id in new_ids
        for line_no, posting in enumerate(_nonzero(entry.postings), start=1)
    ]
    connection.execute(INSERT_LINES, {
        "entry_ids": [entry_id for entry_id, _, _ in lines],
        "line_nos": [line_no for _, line_no, _ in lines],
        "accounts": [posting.account for _, _, posting in lines],
        "debits": [posting.debit_minor for _, _, posting in lines],
        "credits": [posting.credit_minor for _, _, posting in lines],
    })
    return len(new_ids)


def _nonzero(postings: Iterable[Posting]) -> list[Posting]:
    return [posting for posting in postings if posting.debit_minor or posting.credit_minor]
