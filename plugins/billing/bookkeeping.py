"""What each money event posts to the ledger (SPEC §14), in the transaction of the event.

  invoice issued   Dr accounts_receivable: the total before credits. Cr each line's account by kind
                   (LINE_ACCOUNTS): revenue:subscription, revenue:usage, tax_payable; a discount debits
                   revenue:discounts. A negative subtotal carried to a grant credits customer_credit.
                   An inclusive tax is inside the other lines: it moves from the revenue accounts,
                   pro rata to their amounts, to tax_payable.
  credits applied  Dr customer_credit for grants the system made (billing.credit_grants: their liability
                   was posted when made), Dr promotional_credit (an expense) for the application's
                   grants (raw.credit_grants: a promise, booked when spent); Cr accounts_receivable.
  payment          Dr cash, Cr accounts_receivable: the amount charged.
  write-off        Dr bad_debt, Cr accounts_receivable: what remained (billing.invoice_balances).
  void             The sale is taken back for what was never collected: Dr the issue entry's accounts
                   pro rata; Cr accounts_receivable (what remained) and bad_debt (what was written off).

Entry ids derive from the event (`invoice_issued:<invoice_id>`, `payment:<idempotency_key>`, …), so a
re-run or a resumed crash posts nothing twice. `backfill` posts, once, the ledger of invoices issued
before the ledger existed.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from fractions import Fraction
from itertools import groupby

from psycopg.rows import dict_row

from billing.ledger import JournalEntry, credit, debit, post

RECEIVABLE = "accounts_receivable"
REVENUE_ACCOUNTS = ("revenue:subscription", "revenue:usage", "revenue:discounts")

# The account an invoice line's amount is credited to, by kind. Credit lines are the credits_applied
# entry; an adjustment that carries a negative subtotal to a grant (detail.grant_id) is customer_credit.
LINE_ACCOUNTS = {
    "base_fee": "revenue:subscription",
    "minimum_commitment": "revenue:subscription",
    "usage": "revenue:usage",
    "adjustment": "revenue:usage",
    "discount": "revenue:discounts",
    "tax": "tax_payable",
}

ISSUED_LINES = """
select invoices.invoice_id, invoices.invoice_number, invoices.customer_id, invoices.currency,
    invoices.total_minor + invoices.credits_minor as receivable_minor, invoices.issued_at,
    lines.kind, lines.amount_minor, lines.detail, lines.adds_to_total
from billing.invoices
left join billing.invoice_lines as lines
    on invoices.invoice_id = lines.invoice_id and lines.kind != 'credit'
where invoices.invoice_id = any(%(invoice_ids)s)
order by invoices.invoice_id, lines.line_no
"""

CREDITS_APPLIED = """
select invoices.invoice_id, invoices.invoice_number, invoices.customer_id, invoices.currency, invoices.issued_at,
    case when system_grants.grant_id is null then 'promotional_credit' else 'customer_credit' end as account,
    sum(applications.amount_minor)::bigint as amount_minor
from billing.credit_applications as applications
inner join billing.invoices on applications.invoice_id = invoices.invoice_id
left join billing.credit_grants as system_grants on applications.grant_id = system_grants.grant_id
where applications.invoice_id = any(%(invoice_ids)s)
group by 1, 2, 3, 4, 5, 6
order by 1, 6
"""

# What the issue and write-off entries of voided invoices posted, per account (credit positive).
POSTED_FOR_VOID = """
select entries.invoice_id, entries.kind, lines.account, sum(lines.credit_minor - lines.debit_minor)::bigint
from billing.journal_entries as entries
inner join billing.journal_lines as lines on entries.entry_id = lines.entry_id
where entries.entry_id = any(%(entry_ids)s)
group by 1, 2, 3
"""

# Invoices without a ledger entry (issued before the ledger), with when they were given up or
# voided: the times of the webhook events written with those changes.
UNPOSTED_INVOICES = """
with status_changes as (
    select subject_id as invoice_id,
        min(created_at) filter (where event_type = 'billing.invoice.uncollectible') as written_off_at,
        min(created_at) filter (where event_type = 'billing.invoice.voided') as voided_at
    from billing.webhook_events
    where event_type in ('billing.invoice.uncollectible', 'billing.invoice.voided')
    group by 1
)
select invoices.*, status_changes.written_off_at, status_changes.voided_at
from billing.invoices
left join status_changes on invoices.invoice_id = status_changes.invoice_id
where not exists (
    select 1 from billing.journal_entries as entries where entries.invoice_id = invoices.invoice_id
)
"""

SUCCEEDED_ATTEMPTS = """
select idempotency_key, invoice_id, attempt_no, amount_minor, resolved_at
from billing.charge_attempts
where status = 'succeeded' and invoice_id = any(%(invoice_ids)s)
"""


def post_issued(connection, invoice_ids: list[str]) -> int:
    """Post the issue and credits_applied entries of these invoices, in one `post`; returns how many
    entries were new."""
    params = {"invoice_ids": invoice_ids}
    cursor = connection.cursor(row_factory=dict_row)
    lines = cursor.execute(ISSUED_LINES, params).fetchall()
    issued = [issue_entry(rows[0], rows) for rows in _by_invoice(lines)]
    credited = [_credits_entry(rows) for rows in _by_invoice(cursor.execute(CREDITS_APPLIED, params).fetchall())]
    return post(connection, [*issued, *credited])


def issue_entry(invoice: dict, lines: list[dict]) -> JournalEntry:
    """The invoice_issued entry of an invoice (its receivable_minor: the total before credits) and
    its lines other than credits."""
    credited: dict[str, int] = defaultdict(int)
    inclusive_tax = 0
    for line in lines:
        if line["kind"] is None:  # an invoice without lines
            continue
        if not line["adds_to_total"]:  # an inclusive tax line
            inclusive_tax += line["amount_minor"]
        elif line["kind"] == "adjustment" and "grant_id" in (line["detail"] or {}):
            credited["customer_credit"] += line["amount_minor"]
        elif line["kind"] in LINE_ACCOUNTS:
            credited[LINE_ACCOUNTS[line["kind"]]] += line["amount_minor"]
        else:
            raise ValueError(f"{invoice['invoice_number']}: no ledger account for a {line['kind']!r} line")
    if inclusive_tax:
        revenue = {account: credited[account] for account in REVENUE_ACCOUNTS if credited.get(account)}
        for account, share in pro_rata(inclusive_tax, revenue).items():
            credited[account] -= share
        credited["tax_payable"] += inclusive_tax
    return _entry(
        invoice, "invoice_issued", f"{invoice['invoice_number']} issued",
        [debit(RECEIVABLE, invoice["receivable_minor"]),
         *(credit(account, amount) for account, amount in sorted(credited.items()))],
        posted_at=invoice["issued_at"],
    )


def _credits_entry(rows: list[dict]) -> JournalEntry:
    invoice = rows[0]
    return _entry(
        invoice, "credits_applied", f"Credits applied to {invoice['invoice_number']}",
        [*(debit(row["account"], row["amount_minor"]) for row in rows),
         credit(RECEIVABLE, sum(row["amount_minor"] for row in rows))],
        posted_at=invoice["issued_at"],
    )


def payment_entry(invoice: dict, attempt: dict, *, posted_at: datetime | None = None) -> JournalEntry:
    """A succeeded charge attempt: the amount it charged."""
    return _entry(
        invoice, "payment_succeeded", f"Payment of {invoice['invoice_number']} (attempt {attempt['attempt_no']})",
        [debit("cash", attempt["amount_minor"]), credit(RECEIVABLE, attempt["amount_minor"])],
        entry_id=f"payment:{attempt['idempotency_key']}", posted_at=posted_at,
    )


def write_off_entry(invoice: dict, remaining_minor: int, *, posted_at: datetime | None = None) -> JournalEntry:
    """An invoice become uncollectible: what remained to pay, written off."""
    return _entry(
        invoice, "write_off", f"{invoice['invoice_number']} written off as uncollectible",
        [debit("bad_debt", remaining_minor), credit(RECEIVABLE, remaining_minor)],
        posted_at=posted_at,
    )


def void_entries(connection, voids: list[tuple[dict, int, datetime | None]]) -> list[JournalEntry]:
    """The void entries of (invoice, what remained to pay just before the void, when) triples: the
    issue entry taken back, pro rata, for what remained and what had been written off."""
    rows = connection.execute(POSTED_FOR_VOID, {"entry_ids": [
        f"{kind}:{invoice['invoice_id']}" for invoice, _, _ in voids for kind in ("invoice_issued", "write_off")
    ]}).fetchall()
    issued: dict[str, dict[str, int]] = defaultdict(dict)
    written_off: dict[str, int] = defaultdict(int)
    for invoice_id, kind, account, credited in rows:
        if kind == "write_off" and account == "bad_debt":
            written_off[invoice_id] = -credited
        elif kind == "invoice_issued" and account != RECEIVABLE:
            issued[invoice_id][account] = credited
    entries = []
    for invoice, remaining_minor, voided_at in voids:
        uncollected = remaining_minor + written_off[invoice["invoice_id"]]
        if not uncollected or not sum(issued[invoice["invoice_id"]].values()):
            continue
        taken_back = pro_rata(uncollected, issued[invoice["invoice_id"]])
        entries.append(_entry(
            invoice, "void", f"{invoice['invoice_number']} voided",
            [*(debit(account, amount) for account, amount in sorted(taken_back.items())),
             credit(RECEIVABLE, remaining_minor), credit("bad_debt", written_off[invoice["invoice_id"]])],
            posted_at=voided_at,
        ))
    return entries


def backfill(connection) -> int:
    """Post the ledger of the invoices that have none, once (`billing init`): those issued before
    the ledger existed, their events as they stand, each at the time it happened. Before the ledger
    an invoice owed its total until it was paid, written off or voided. Returns the entries posted."""
    cursor = connection.cursor(row_factory=dict_row)
    invoices = cursor.execute(UNPOSTED_INVOICES).fetchall()
    if not invoices:
        return 0
    by_id = {invoice["invoice_id"]: invoice for invoice in invoices}
    posted = post_issued(connection, list(by_id))
    attempts = cursor.execute(SUCCEEDED_ATTEMPTS, {"invoice_ids": list(by_id)}).fetchall()
    written_off = {
        invoice["invoice_id"] for invoice in invoices
        if invoice["status"] == "uncollectible" or invoice["written_off_at"] is not None
    }
    posted += post(connection, [
        *(payment_entry(by_id[attempt["invoice_id"]], attempt, posted_at=attempt["resolved_at"])
          for attempt in attempts),
        *(write_off_entry(by_id[invoice_id], by_id[invoice_id]["total_minor"],
                          posted_at=by_id[invoice_id]["written_off_at"]) for invoice_id in written_off),
    ])
    return posted + post(connection, void_entries(connection, [
        (invoice, 0 if invoice["invoice_id"] in written_off else invoice["total_minor"], invoice["voided_at"])
        for invoice in invoices if invoice["status"] == "void"
    ]))


def pro_rata(amount: int, weights: dict[str, int]) -> dict[str, int]:
    """`amount` split in proportion to `weights` (signed, summing to non-zero): each share rounded
    half away from zero, the rounding difference given to the largest weight, so the shares sum to
    `amount` exactly."""
    total = sum(weights.values())
    shares = {key: _round_half_away(Fraction(amount * weight, total)) for key, weight in weights.items()}
    largest = max(weights, key=lambda key: abs(weights[key]))
    shares[largest] += amount - sum(shares.values())
    return shares


def _round_half_away(value: Fraction) -> int:
    magnitude = int(abs(value) + Fraction(1, 2))
    return magnitude if value >= 0 else -magnitude


def _entry(invoice: dict, kind: str, description: str, postings: list, *, entry_id: str | None = None,
           posted_at: datetime | None = None) -> JournalEntry:
    return JournalEntry(
        entry_id=entry_id or f"{kind}:{invoice['invoice_id']}", kind=kind, customer_id=invoice["customer_id"],
        currency=invoice["currency"], description=description, postings=tuple(postings),
        invoice_id=invoice["invoice_id"], posted_at=posted_at,
    )


def _by_invoice(rows: list[dict]) -> list[list[dict]]:
    """Rows ordered by invoice, as one list per invoice."""
    return [list(group) for _, group in groupby(rows, key=lambda row: row["invoice_id"])]
