"""Daily charge retries (SPEC §7), by the view billing.charge_collection_schedule.

That view applies the schedule in billing.charge_retry_policy to every invoice whose last attempt
failed; the dunning mart (fct_dunning) reads the same view. A failed invoice gets one new attempt
per day until it runs out of attempts (its key is a digest of invoice × attempt number, and a day
with an attempt gets no second one), so re-running the day's run charges nothing twice. An invoice
whose last failed attempt is `give_up_after` old is given up (`uncollectible`) instead of retried.
A run's shards (billing.shards) each retry their own customers' invoices.
"""

from __future__ import annotations

from datetime import datetime

from psycopg.rows import dict_row

from billing.bookkeeping import write_off_entry
from billing.ledger import post
from billing.payments.charging import (
    ChargeSummary,
    announce_uncollectible,
    record_attempts,
    resolve_pending_attempts,
)
from billing.payments.gateway import PaymentGateway
from billing.shards import ONE_SHARD, Shard
from billing.warehouse import connect

# The shard's failed invoices whose next attempt is due: from the next retry bin on, before they are
# given up.
DUE_RETRIES = """
select invoices.invoice_id, schedule.attempts_made + 1
from billing.invoices
inner join billing.charge_collection_schedule as schedule on invoices.invoice_id = schedule.invoice_id
where invoices.status = 'payment_failed'
    and billing.shard_of(invoices.customer_id, %(shards)s) = %(shard)s
    and schedule.next_attempt_from <= %(now)s::timestamptz
    and schedule.gives_up_at > %(now)s::timestamptz
order by invoices.invoice_number
"""

# The shard's failed invoices given up, with what remained to pay (their write-off).
GIVEN_UP = """
update billing.invoices
set status = 'uncollectible'
from billing.charge_collection_schedule as schedule
inner join billing.invoice_balances as balances on schedule.invoice_id = balances.invoice_id
where invoices.invoice_id = schedule.invoice_id
    and invoices.status = 'payment_failed'
    and billing.shard_of(invoices.customer_id, %(shards)s) = %(shard)s
    and schedule.gives_up_at <= %(now)s::timestamptz
returning invoices.*, balances.amount_remaining_minor as remaining_before_minor
"""


def retry_failed_charges(
    gateway: PaymentGateway, *, now: datetime, shard: Shard = ONE_SHARD, concurrency: int | None = None
) -> ChargeSummary:
    """For the shard's customers: give up on stale invoices, then retry the others once and resolve
    every pending attempt, `concurrency` at a time (default BILLING_CHARGE_CONCURRENCY)."""
    give_up_stale(now=now, shard=shard)
    record_attempts(DUE_RETRIES, now=now, **shard.sql_params())
    return resolve_pending_attempts(gateway, shard=shard, concurrency=concurrency)


def give_up_stale(*, now: datetime, shard: Shard = ONE_SHARD) -> int:
    """Mark `uncollectible` the shard's failed invoices whose last attempt is `give_up_after` old, with
    their write-offs and webhooks."""
    with connect() as connection:
        invoices = connection.cursor(row_factory=dict_row).execute(
            GIVEN_UP, {"now": now, **shard.sql_params()}
        ).fetchall()
        post(connection, [write_off_entry(invoice, invoice["remaining_before_minor"]) for invoice in invoices])
        for invoice in invoices:
            announce_uncollectible(connection, invoice)
    return len(invoices)
