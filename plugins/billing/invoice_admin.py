"""Operator actions on issued invoices: find, show and void; what no invoice carries yet: re-rated
differences without a carrier and drafts held back from issue.

Amounts and lines are never edited.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass

from psycopg.rows import dict_row

from billing.bookkeeping import void_entries
from billing.invoicing import invoice_payload
from billing.ledger import post
from billing.warehouse import connect
from billing.webhooks.outbox import enqueue_event

INVOICE_VOIDED = "billing.invoice.voided"
VOIDABLE = ("open", "payment_failed", "uncollectible")


class InvoiceNotFound(LookupError):
    code = "invoice_not_found"


class VoidNotAllowed(ValueError):
    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class InvoiceDetail:
    invoice: dict
    lines: list[dict]
    attempts: list[dict]


def list_invoices(*, status: str | None = None, customer_id: str | None = None, limit: int = 50) -> list[dict]:
    with connect() as connection:
        return connection.cursor(row_factory=dict_row).execute(
            "select * from billing.invoices"
            " where (%(status)s::text is null or status = %(status)s)"
            " and (%(customer_id)s::text is null or customer_id = %(customer_id)s)"
            " order by invoice_number desc limit %(limit)s",
            {"status": status, "customer_id": customer_id, "limit": limit},
        ).fetchall()


def unbilled_adjustments(*, customer_id: str | None = None) -> list[dict]:
    """Re-rated differences no invoice can carry (billing_marts.fct_unbilled_adjustments), oldest first."""
    return _mart_rows("fct_unbilled_adjustments", "true", order_by="original_invoice_number", customer_id=customer_id)


def held_drafts(*, customer_id: str | None = None) -> list[dict]:
    """Drafts of closed periods held back from issue, with their hold_reason (fct_draft_invoices)."""
    return _mart_rows(
        "fct_draft_invoices",
        "hold_reason is not null and not exists"
        " (select 1 from billing.invoices where invoices.invoice_id = mart.invoice_id)",
        order_by="period_end, subscription_id",
        customer_id=customer_id,
    )


def _mart_rows(model: str, condition: str, *, order_by: str, customer_id: str | None) -> list[dict]:
    with connect() as connection:
        # NOTE: the marts exist only once a cycle close has built them
        [(exists,)] = connection.execute("select to_regclass(%s) is not null", (f"billing_marts.{model}",))
        if not exists:
            return []
        return connection.cursor(row_factory=dict_row).execute(
            f"select * from billing_marts.{model} as mart where {condition}"
            " and (%(customer_id)s::text is null or customer_id = %(customer_id)s)"
            f" order by {order_by}",
            {"customer_id": customer_id},
        ).fetchall()


def show_invoice(reference: str) -> InvoiceDetail:
    """An invoice by id or number, with its lines and charge attempts."""
    with connect() as connection:
        cursor = connection.cursor(row_factory=dict_row)
        invoice = find_invoice(cursor, reference)
        lines = cursor.execute(
            "select * from billing.invoice_lines where invoice_id = %s order by line_no", (invoice["invoice_id"],)
        ).fetchall()
        attempts = cursor.execute(
            "select attempt_no, status, failure_code, amount_minor, attempted_for, resolved_at"
            " from billing.charge_attempts where invoice_id = %s order by attempt_no", (invoice["invoice_id"],)
        ).fetchall()
    return InvoiceDetail(invoice, lines, attempts)


def void_invoice(reference: str, *, reason: str) -> dict:
    """Void an unpaid invoice, post its void entry and announce it (`billing.invoice.voided`), in one
    transaction."""
    with connect() as connection:
        cursor = connection.cursor(row_factory=dict_row)
        invoice = find_invoice(cursor, reference, lock=True)
        if invoice["status"] not in VOIDABLE:
            raise VoidNotAllowed(
                f"invoice_{invoice['status']}",
                f"{invoice['invoice_number']} is {invoice['status']};"
                f" only {', '.join(VOIDABLE)} invoices can be voided",
            )
        if cursor.execute(
            "select 1 from billing.charge_attempts where invoice_id = %s and status = 'pending'",
            (invoice["invoice_id"],),
        ).fetchone():
            raise VoidNotAllowed(
                "charge_in_flight",
                f"{invoice['invoice_number']} has a charge in flight; void it once the charge is resolved",
            )
        [remaining_minor] = cursor.execute(
            "select amount_remaining_minor from billing.invoice_balances where invoice_id = %s",
            (invoice["invoice_id"],),
        ).fetchone().values()
        voided = cursor.execute(
            "update billing.invoices set status = 'void' where invoice_id = %s returning *", (invoice["invoice_id"],)
        ).fetchone()
        post(connection, void_entries(connection, [(voided, remaining_minor, None)]))
        enqueue_event(
            connection, event_type=INVOICE_VOIDED, subject_id=voided["invoice_id"],
            data={**invoice_payload(voided), "reason": reason, "voided_by": getpass.getuser()},
        )
    return voided


def find_invoice(cursor, reference: str, *, lock: bool = False) -> dict:
    invoice = cursor.execute(
        "select * from billing.invoices where invoice_id = %(ref)s or invoice_number = %(ref)s"
        + (" for update" if lock else ""),
        {"ref": reference},
    ).fetchone()
    if invoice is None:
        raise InvoiceNotFound(f"no invoice with id or number '{reference}'")
    return invoice
