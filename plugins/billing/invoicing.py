"""Issue invoices from the dbt drafts: once per subscription-period, gaplessly numbered, immutable.

The drafts (billing_marts.fct_draft_invoices / fct_draft_invoice_lines) hold every closed period;
issuing copies those without an invoice into billing.invoices and billing.invoice_lines in one
statement, numbered in order of period_end, period_start, subscription_id (SPEC §6). Their ids are
derived from subscription × period, so a re-run finds them issued and issues nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg.rows import dict_row

from billing.warehouse import connect
from billing.webhooks.outbox import enqueue_event

INVOICE_GENERATED = "billing.invoice.generated"

ISSUE_DRAFTS = """
with

pending as (
    select drafts.*
    from billing_marts.fct_draft_invoices as drafts
    where not exists (
        select 1 from billing.invoices where invoices.invoice_id = drafts.invoice_id
    )
),

numbered as (
    select
        pending.*,
        (select count(*) from billing.invoices)
            + row_number() over (order by period_end, period_start, subscription_id)
            as sequence_no
    from pending
),

issued as (
    insert into billing.invoices (
        invoice_id, invoice_number, customer_id, subscription_id, period_start, period_end,
        currency, subtotal_minor, credits_minor, total_minor, status, issued_at
    )
    select
        invoice_id,
        'INV-' || lpad(sequence_no::text, 6, '0'),
        customer_id,
        subscription_id,
        period_start,
        period_end,
        currency,
        subtotal_minor,
        0,
        subtotal_minor,
        -- SPEC §6: a zero total is paid without a charge
        case when subtotal_minor = 0 then 'paid' else 'open' end,
        now()
    from numbered
    returning *
),

issued_lines as (
    insert into billing.invoice_lines (
        invoice_id, line_no, kind, event_name, description, quantity, included_units,
        amount_minor, detail
    )
    select
        lines.invoice_id, lines.line_no, lines.kind, lines.event_name, lines.description,
        lines.quantity, lines.included_units, lines.amount_minor, lines.detail
    from billing_marts.fct_draft_invoice_lines as lines
    inner join issued on lines.invoice_id = issued.invoice_id
)

select issued.*, pending.collection_method
from issued
inner join pending on issued.invoice_id = pending.invoice_id
order by issued.invoice_number
"""


@dataclass(frozen=True)
class IssueResult:
    issued: int
    awaiting_charge: int


def issue_invoices() -> IssueResult:
    """Issue every draft that has no invoice yet; returns how many, and how many await a charge."""
    with connect() as connection:
        # NOTE: numbering is count + row_number; the lock keeps two runs from taking the same numbers.
        connection.execute("lock table billing.invoices in share row exclusive mode")
        cursor = connection.cursor(row_factory=dict_row)
        invoices = cursor.execute(ISSUE_DRAFTS).fetchall()
        awaiting_charge = 0
        for invoice in invoices:
            if invoice["collection_method"] == "auto_charge" and invoice["status"] == "open":
                awaiting_charge += 1  # announced once its charge has an outcome (SPEC §8)
            else:
                announce_invoice(connection, invoice)
    return IssueResult(issued=len(invoices), awaiting_charge=awaiting_charge)


def announce_invoice(connection, invoice: dict) -> str:
    """Enqueue `billing.invoice.generated` for the invoice, in the caller's transaction."""
    return enqueue_event(
        connection,
        event_type=INVOICE_GENERATED,
        subject_id=invoice["invoice_id"],
        data=invoice_payload(invoice),
    )


def invoice_payload(invoice: dict) -> dict:
    return {
        key: invoice[key]
        for key in ("invoice_id", "invoice_number", "customer_id", "subscription_id", "period_start",
                    "period_end", "currency", "subtotal_minor", "credits_minor", "total_minor", "status")
    }
