"""Charge auto_charge invoices: each attempt recorded before the gateway call, resolved after (SPEC §7).

A crash or a lost response between the two leaves the attempt pending; the next run re-sends it
with the same idempotency key, so the customer is charged at most once per attempt. Gateway calls
run concurrently (bounded), so gateway latency does not serialise a cycle of thousands of invoices;
a run's shards (billing.shards) each charge their own customers' invoices, on several workers.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import dict_row

from billing.bookkeeping import payment_entry, write_off_entry
from billing.idempotency import idempotency_key
from billing.invoicing import announce_invoice, invoice_payload
from billing.ledger import post
from billing.payments.gateway import ChargeOutcome, ChargeRequest, OutcomeUnknown, PaymentGateway
from billing.settings import charge_concurrency
from billing.shards import ONE_SHARD, Shard
from billing.warehouse import connect, pooled_connections
from billing.webhooks.outbox import enqueue_event

CHARGE_SUCCEEDED = "billing.charge.succeeded"
CHARGE_FAILED = "billing.charge.failed"
INVOICE_UNCOLLECTIBLE = "billing.invoice.uncollectible"
NO_PAYMENT_METHOD = "no_payment_method"

# The shard's open auto_charge invoices that have no charge attempt yet.
UNCHARGED_INVOICES = """
select invoices.invoice_id, 1 as attempt_no
from billing.invoices
inner join raw.customers on invoices.customer_id = customers.customer_id
where invoices.status = 'open'
    and customers.collection_method = 'auto_charge'
    and billing.shard_of(invoices.customer_id, %(shards)s) = %(shard)s
    and not exists (
        select 1 from billing.charge_attempts where charge_attempts.invoice_id = invoices.invoice_id
    )
order by invoices.invoice_number
"""

# One pending attempt per (key, invoice_id, attempt_no) given, in one statement.
RECORD_ATTEMPTS = """
insert into billing.charge_attempts (
    idempotency_key, invoice_id, attempt_no, payment_method_id, amount_minor, currency, status,
    attempted_for
)
select due.idempotency_key, invoices.invoice_id, due.attempt_no, customers.payment_method_id,
    invoices.amount_remaining_minor, invoices.currency, 'pending', %(now)s
from unnest(%(keys)s::text [], %(invoice_ids)s::text [], %(attempt_nos)s::int []) as due (
    idempotency_key, invoice_id, attempt_no
)
inner join billing.invoice_balances as invoices on due.invoice_id = invoices.invoice_id
inner join raw.customers on invoices.customer_id = customers.customer_id
on conflict do nothing
"""

# Record a pending attempt's outcome and move its invoice: paid, or failed until its last attempt
# (SPEC §7). Only an invoice still awaiting payment moves; an operator's void stands. Returns the
# invoice, with what remained to pay before (a write-off's amount), or nothing when the attempt was
# no longer pending (another run resolved it first).
RESOLVE_ATTEMPT = """
with resolved as (
    update billing.charge_attempts
    set status = %(status)s, failure_code = %(failure_code)s, gateway_charge_id = %(gateway_charge_id)s,
        resolved_at = now()
    where idempotency_key = %(idempotency_key)s and status = 'pending'
    returning invoice_id, attempt_no
)
update billing.invoices
set status = case
    when invoices.status not in ('open', 'payment_failed') then invoices.status
    when %(status)s = 'succeeded' then 'paid'
    when resolved.attempt_no >= policy.max_attempts then 'uncollectible'
    else 'payment_failed'
end
from resolved
cross join billing.charge_retry_policy as policy
inner join billing.invoice_balances as balances on resolved.invoice_id = balances.invoice_id
where invoices.invoice_id = resolved.invoice_id
returning invoices.*, balances.amount_remaining_minor as remaining_before_minor
"""


# The shard's pending attempts: new, or left by a crash or a lost response.
PENDING_ATTEMPTS = """
select charge_attempts.*
from billing.charge_attempts
inner join billing.invoices on charge_attempts.invoice_id = invoices.invoice_id
where charge_attempts.status = 'pending'
    and billing.shard_of(invoices.customer_id, %(shards)s) = %(shard)s
order by charge_attempts.created_at, charge_attempts.invoice_id
"""


class ChargesUnresolved(RuntimeError):
    """Some gateway calls had no answer; their attempts stay pending and are resumed on the next run."""


@dataclass(frozen=True)
class ChargeSummary:
    succeeded: int = 0
    failed: int = 0


def charge_open_invoices(
    gateway: PaymentGateway, *, now: datetime, shard: Shard = ONE_SHARD, concurrency: int | None = None
) -> ChargeSummary:
    """The first attempt of every uncharged invoice of the shard's customers, then every pending
    attempt of theirs (new or left by a crash), `concurrency` at a time (default
    BILLING_CHARGE_CONCURRENCY)."""
    record_attempts(UNCHARGED_INVOICES, now=now, **shard.sql_params())
    return resolve_pending_attempts(gateway, shard=shard, concurrency=concurrency)


def record_attempts(due_invoices_sql: str, *, now: datetime, **params) -> int:
    """Record an attempt for each (invoice_id, attempt_no) the query returns, before any gateway call."""
    with connect() as connection:
        due = connection.execute(due_invoices_sql, {"now": now, **params}).fetchall()
        connection.execute(RECORD_ATTEMPTS, {
            "keys": [idempotency_key("ch", invoice_id, attempt_no) for invoice_id, attempt_no in due],
            "invoice_ids": [invoice_id for invoice_id, _ in due],
            "attempt_nos": [attempt_no for _, attempt_no in due],
            "now": now,
        })
    return len(due)


def resolve_pending_attempts(
    gateway: PaymentGateway, *, shard: Shard = ONE_SHARD, concurrency: int | None = None
) -> ChargeSummary:
    """Send the shard's pending attempts to the gateway, `concurrency` at a time (default
    BILLING_CHARGE_CONCURRENCY), and record the outcomes.

    The calls share that many warehouse connections, kept open for the run (the sandbox gateway's
    ledger and each outcome's transaction): one new connection per call would cost more than its work.
    """
    with connect() as connection:
        attempts = connection.cursor(row_factory=dict_row).execute(PENDING_ATTEMPTS, shard.sql_params()).fetchall()
    if not attempts:
        return ChargeSummary()
    in_flight = min(concurrency or charge_concurrency(), len(attempts))
    with pooled_connections(in_flight), ThreadPoolExecutor(max_workers=in_flight) as pool:
        results = list(pool.map(lambda attempt: _charge(gateway, attempt), attempts))
    unresolved = [message for message in results if isinstance(message, str)]
    if unresolved:
        raise ChargesUnresolved("outcome unknown, will be resumed with the same key: " + "; ".join(unresolved))
    return ChargeSummary(
        succeeded=sum(1 for outcome in results if outcome.succeeded),
        failed=sum(1 for outcome in results if not outcome.succeeded),
    )


def _charge(gateway: PaymentGateway, attempt: dict) -> ChargeOutcome | str:
    try:
        outcome = _call_gateway(gateway, attempt)
    except OutcomeUnknown as error:
        return f"{attempt['invoice_id']} (attempt {attempt['attempt_no']}): {error}"
    resolve_attempt(attempt, outcome)
    return outcome


def resolve_attempt(attempt: dict, outcome: ChargeOutcome) -> None:
    """Record the outcome, move the invoice, post its ledger entries (the payment, or a write-off when
    it became uncollectible) and enqueue its webhooks, in one transaction."""
    with connect() as connection:
        invoice = connection.cursor(row_factory=dict_row).execute(RESOLVE_ATTEMPT, {
            "idempotency_key": attempt["idempotency_key"],
            "status": "succeeded" if outcome.succeeded else "failed",
            "failure_code": outcome.failure_code,
            "gateway_charge_id": outcome.gateway_charge_id,
        }).fetchone()
        if invoice is None:
            return  # NOTE: another run resolved it first; its outcome and events stand
        # NOTE: a charge that succeeded took the money, whatever the invoice's status
        post(connection, [
            *([payment_entry(invoice, attempt)] if outcome.succeeded else []),
            *([write_off_entry(invoice, invoice["remaining_before_minor"])]
              if invoice["status"] == "uncollectible" else []),
        ])
        with connection.pipeline():  # the events' inserts need no answer: sent in one round trip
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
            announce_invoice(connection, invoice)  # once per invoice: after its first charge outcome
            if invoice["status"] == "uncollectible":
                announce_uncollectible(connection, invoice)


def announce_uncollectible(connection, invoice: dict) -> None:
    enqueue_event(
        connection, event_type=INVOICE_UNCOLLECTIBLE, subject_id=invoice["invoice_id"],
        data=invoice_payload(invoice),
    )


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
