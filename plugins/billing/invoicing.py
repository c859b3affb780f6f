"""Issue invoices from the dbt drafts: once per subscription-period, gaplessly numbered, immutable.

The drafts (billing_marts.fct_draft_invoices / fct_draft_invoice_lines) hold every closed period;
issuing copies those without an invoice, and not held (`hold_reason`), into billing.invoices and
billing.invoice_lines in one transaction, numbered in order of period_end, period_start,
subscription_id, with credits applied in that order (SPEC §6). Invoice ids derive from
subscription × period, so a re-run finds them issued and issues nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from billing.bookkeeping import post_issued
from billing.credits import CreditBalances
from billing.settings import invoice_pdf_location
from billing.warehouse import connect
from billing.webhooks.outbox import enqueue_event

INVOICE_GENERATED = "billing.invoice.generated"

# The drafts whose period still has no invoice: the view reads billing.invoices when queried.
PENDING_DRAFTS = """
select drafts.*
from billing_marts.fct_draft_invoices as drafts
inner join billing_intermediate.int_subscription_periods__awaiting_invoice as awaiting
    on drafts.subscription_id = awaiting.subscription_id
    and drafts.period_start = awaiting.period_start
where drafts.hold_reason is null
order by drafts.period_end, drafts.period_start, drafts.subscription_id
"""

INSERT_INVOICE = """
insert into billing.invoices (
    invoice_id, invoice_number, customer_id, subscription_id, period_start, period_end,
    currency, subtotal_minor, discount_minor, minimum_minor, tax_minor, tax_inclusive_minor,
    reverse_charge, credits_minor, total_minor, status, issued_at,
    invoice_date, due_at, issued_by_run, issued_in_backfill
)
values (
    %(invoice_id)s, %(invoice_number)s, %(customer_id)s, %(subscription_id)s, %(period_start)s,
    %(period_end)s, %(currency)s, %(subtotal_minor)s, %(discount_minor)s, %(minimum_minor)s,
    %(tax_minor)s, %(tax_inclusive_minor)s, %(reverse_charge)s, %(credits_minor)s, %(total_minor)s,
    %(status)s, now(), %(invoice_date)s, %(due_at)s, %(issued_by_run)s, %(issued_in_backfill)s
)
returning *
"""

COPY_DRAFT_LINES = """
insert into billing.invoice_lines (
    invoice_id, line_no, kind, event_name, description, quantity, included_units, amount_minor, detail,
    adds_to_total
)
select invoice_id, line_no, kind, event_name, description, quantity, included_units, amount_minor, detail,
    adds_to_total
from billing_marts.fct_draft_invoice_lines
where invoice_id = any(%(invoice_ids)s)
"""


@dataclass(frozen=True)
class IssueResult:
    issued: int
    awaiting_charge: int


def issue_invoices(*, issued_by_run: str, backfill: bool = False) -> IssueResult:
    """Issue every draft that has no invoice yet, with their ledger entries, in one transaction;
    returns counts.

    The drafts carry the issuing run's dates (`invoice_date`, `due_at`: they were built for its
    as_of); the invoices also name the run and whether it was a backfill (SPEC §10).
    """
    with connect() as connection:
        # NOTE: numbers are count + position; the lock keeps two runs from taking the same numbers.
        connection.execute("lock table billing.invoices in share row exclusive mode")
        drafts = connection.cursor(row_factory=dict_row).execute(PENDING_DRAFTS).fetchall()
        if not drafts:
            return IssueResult(issued=0, awaiting_charge=0)
        [(first_number,)] = connection.execute("select count(*) + 1 from billing.invoices").fetchall()
        credits = CreditBalances.load(connection, sorted({draft["customer_id"] for draft in drafts}))
        provenance = {"issued_by_run": issued_by_run, "issued_in_backfill": backfill}
        invoices = [
            _issue(connection, {**draft, **provenance}, sequence_no=first_number + offset, credits=credits)
            for offset, draft in enumerate(drafts)
        ]
        invoice_ids = [invoice["invoice_id"] for invoice in invoices]
        connection.execute(COPY_DRAFT_LINES, {"invoice_ids": invoice_ids})
        post_issued(connection, invoice_ids)
        awaiting_charge = 0
        for draft, invoice in zip(drafts, invoices, strict=True):
            if draft["collection_method"] == "auto_charge" and invoice["status"] == "open":
                awaiting_charge += 1  # announced once its charge has an outcome (SPEC §8)
            else:
                announce_invoice(connection, invoice)
    return IssueResult(issued=len(invoices), awaiting_charge=awaiting_charge)


def _issue(connection, draft: dict, *, sequence_no: int, credits: CreditBalances) -> dict:
    """Insert one invoice with its credits applied; a zero total is paid at once (SPEC §6).

    The draft did SPEC §12 steps 1-4 (its total_before_credits_minor); credits come last (step 5).
    """
    # NOTE: an invoice total is never negative: an excess of credit becomes a grant. Only a
    # negative subtotal (adjustments) has one, and it has no discount, minimum or tax (§12).
    excess_minor = max(-draft["total_before_credits_minor"], 0)
    due_minor = draft["total_before_credits_minor"] + excess_minor
    taken = credits.spend_on(draft, due_minor)
    credits_minor = sum(amount for _, amount in taken)
    total_minor = due_minor - credits_minor
    invoice = connection.cursor(row_factory=dict_row).execute(INSERT_INVOICE, {
        **draft,
        "invoice_number": f"INV-{sequence_no:06d}",
        "subtotal_minor": draft["subtotal_minor"] + excess_minor,
        "credits_minor": credits_minor,
        "total_minor": total_minor,
        "status": "paid" if total_minor == 0 else "open",
    }).fetchone()
    next_line = draft["count_lines"] + 1
    if excess_minor:
        credits.add(connection, _carry_to_credit_grant(connection, draft, excess_minor, line_no=next_line))
    if taken:
        _record_credits(connection, draft, taken, line_no=next_line)
    return invoice


def _carry_to_credit_grant(connection, draft: dict, excess_minor: int, *, line_no: int) -> str:
    """Turn a negative subtotal into a system grant usable from the next period on; returns its id."""
    grant_id = f"carry_{draft['invoice_id']}"
    connection.execute(
        "insert into billing.credit_grants"
        " (grant_id, origin_invoice_id, customer_id, currency, amount, granted_at)"
        " select %s, %s, %s, %s, %s / power(10::numeric, minor_unit), %s"
        " from billing_staging.currencies where currency = %s",
        (grant_id, draft["invoice_id"], draft["customer_id"], draft["currency"], excess_minor,
         draft["period_end"], draft["currency"]),
    )
    _insert_line(
        connection, draft, line_no=line_no, kind="adjustment", amount_minor=excess_minor,
        description=f"Credit balance carried to grant {grant_id}", detail={"grant_id": grant_id},
    )
    return grant_id


def _record_credits(connection, draft: dict, taken: list[tuple[str, int]], *, line_no: int) -> None:
    connection.cursor().executemany(
        "insert into billing.credit_applications (grant_id, invoice_id, amount_minor, currency)"
        " values (%s, %s, %s, %s)",
        [(grant_id, draft["invoice_id"], amount, draft["currency"]) for grant_id, amount in taken],
    )
    _insert_line(
        connection, draft, line_no=line_no, kind="credit", amount_minor=-sum(amount for _, amount in taken),
        description="Credits applied",
        detail={"grants": [{"grant_id": grant_id, "amount_minor": amount} for grant_id, amount in taken]},
    )


def _insert_line(connection, draft: dict, *, line_no: int, kind: str, amount_minor: int, description: str,
                 detail: dict) -> None:
    connection.execute(
        "insert into billing.invoice_lines (invoice_id, line_no, kind, description, amount_minor, detail)"
        " values (%s, %s, %s, %s, %s, %s)",
        (draft["invoice_id"], line_no, kind, description, amount_minor, Jsonb(detail)),
    )


def announce_invoice(connection, invoice: dict) -> str:
    """Enqueue `billing.invoice.generated` for the invoice, in the caller's transaction, with where
    its PDF is: the close writes it before its dispatch_webhooks (billing.invoice_pdfs)."""
    return enqueue_event(
        connection,
        event_type=INVOICE_GENERATED,
        subject_id=invoice["invoice_id"],
        data={**invoice_payload(invoice), **invoice_pdf_location(invoice["invoice_number"])},
    )


def invoice_payload(invoice: dict) -> dict:
    return {
        key: invoice[key]
        for key in ("invoice_id", "invoice_number", "customer_id", "subscription_id", "period_start",
                    "period_end", "invoice_date", "due_at", "currency", "subtotal_minor", "discount_minor",
                    "minimum_minor", "tax_minor", "tax_inclusive_minor", "reverse_charge", "credits_minor",
                    "total_minor", "status")
    }
