"""Charge issued auto_charge invoices: attempt recorded before the gateway call, outcome after (SPEC §7).

A crash or a lost response between the two leaves the attempt pending; the next run re-sends it
with the same idempotency key, so the customer is charged at most once per attempt.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg.rows import dict_row

from billing.idempotency import idempotency_key
from billing.invoicing import announce_invoice, invoice_payload
from billing.payments.gateway import ChargeOutcome, ChargeRequest, OutcomeUnknown, PaymentGateway
from billing.warehouse import connect
from billing.webhooks.outbox import enqueue_event

CHARGE_SUCCEEDED = "billing.charge.succeeded"
CHARGE_FAILED = "billing.charge.failed"
NO_PAYMENT_METHOD = "no_payment_method"

# Open auto_charge invoices that have no charge attempt yet.
UNCHARGED_INVOICES = """
select invoices.invoice_id, customers.payment_method_id, invoices.total_minor, invoices.currency
from billing.invoices
inner join raw.customers on invoices.customer_id = customers.customer_id
where invoices.status = 'open'
    and customers.collection_method = 'auto_charge'
    and not exists (
        select 1 from billing.charge_attempts where charge_attempts.invoice_id = invoices.invoice_id
    )
order by invoices.invoice_number
"""


class ChargesUnresolved(RuntimeError):
    """Some gateway calls had no answer; their attempts stay pending and are resumed on the next run."""


@dataclass(frozen=True)
class ChargeSummary:
    succeeded: int
    failed: int


def charge_open_invoices(gateway: PaymentGateway) -> ChargeSummary:
    """Record first attempts, then resolve every pending attempt (new or left by a crash)."""
    record_first_attempts()
    succeeded = failed = 0
    unresolved = []
    for attempt in pending_attempts():
        try:
            outcome = _call_gateway(gateway, attempt)
        except OutcomeUnknown as error:
            unresolved.append(f"{attempt['invoice_id']} (attempt {attempt['attempt_no']}): {error}")
            continue
        resolve_attempt(attempt, outcome)
        succeeded, failed = succeeded + outcome.succeeded, failed + (not outcome.succeeded)
    if unresolved:
        raise ChargesUnresolved("outcome unknown, will be resumed with the same key: " + "; ".join(unresolved))
    return ChargeSummary(succeeded=succeeded, failed=failed)


def record_first_attempts() -> int:
    """Record attempt 1 of every uncharged invoice, before any gateway call; returns how many."""
    with connect() as connection:
        attempts = [
            (idempotency_key("ch", invoice_id, 1), invoice_id, payment_method_id, amount_minor, currency)
            for invoice_id, payment_method_id, amount_minor, currency in connection.execute(UNCHARGED_INVOICES)
        ]
        connection.cursor().executemany(
            "insert into billing.charge_attempts (idempotency_key, invoice_id, attempt_no,"
            " payment_method_id, amount_minor, currency, status)"
            " values (%s, %s, 1, %s, %s, %s, 'pending') on conflict do nothing",
            attempts,
        )
    return len(attempts)


def pending_attempts() -> list[dict]:
    with connect() as connection:
        return connection.cursor(row_factory=dict_row).execute(
            "select * from billing.charge_attempts where status = 'pending' order by created_at, invoice_id"
        ).fetchall()


def resolve_attempt(attempt: dict, outcome: ChargeOutcome) -> None:
    """Record the outcome, move the invoice and enqueue its webhooks, in one transaction."""
    with connect() as connection:
        updated = connection.execute(
            "update billing.charge_attempts set status = %s, failure_code = %s, gateway_charge_id = %s,"
            " resolved_at = now() where idempotency_key = %s and status = 'pending'",
            ("succeeded" if outcome.succeeded else "failed", outcome.failure_code,
             outcome.gateway_charge_id, attempt["idempotency_key"]),
        ).rowcount
        if not updated:
            return  # NOTE: another run resolved it first; its outcome and events stand
        invoice = connection.cursor(row_factory=dict_row).execute(
            "update billing.invoices set status = %s where invoice_id = %s returning *",
            ("paid" if outcome.succeeded else "payment_failed", attempt["invoice_id"]),
        ).fetchone()
        enqueue_event(
            connection,
            event_type=CHARGE_SUCCEEDED if outcome.succeeded else CHARGE_FAILED,
            subject_id=attempt["idempotency_key"],
            data={
                "invoice": invoice_payload(invoice),
                "attempt_no": attempt["attempt_no"],
                "amount_minor": attempt["amount_minor"],
                "currency": attempt["currency"],
                "failure_code": outcome.failure_code,
                "gateway_charge_id": outcome.gateway_charge_id,
            },
        )
        announce_invoice(connection, invoice)


def _call_gateway(gateway: PaymentGateway, attempt: dict) -> ChargeOutcome:
    if not attempt["payment_method_id"]:
        return ChargeOutcome(succeeded=False, failure_code=NO_PAYMENT_METHOD)
    return gateway.charge(ChargeRequest(
        idempotency_key=attempt["idempotency_key"],
        invoice_id=attempt["invoice_id"],
        attempt_no=attempt["attempt_no"],
        payment_method_id=attempt["payment_method_id"],
        amount_minor=attempt["amount_minor"],
        currency=attempt["currency"],
    ))
