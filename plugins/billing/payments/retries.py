"""Daily charge retries (SPEC §7), on the schedule in the view billing.charge_retry_policy.

A failed invoice gets one new attempt per day until it runs out of attempts (its key is a digest
of invoice × attempt number, and a day with an attempt gets no second one), so re-running the
day's run charges nothing twice. An invoice whose last failed attempt is `give_up_after` old is
given up (`uncollectible`) instead of retried.
"""

from __future__ import annotations

from datetime import datetime

from psycopg.rows import dict_row

from billing.payments.charging import (
    ChargeSummary,
    announce_uncollectible,
    record_attempts,
    resolve_pending_attempts,
)
from billing.payments.gateway import PaymentGateway
from billing.warehouse import connect

LATEST_ATTEMPTS = """
select distinct on (invoice_id) invoice_id, attempt_no, status, attempted_for
from billing.charge_attempts
order by invoice_id, attempt_no desc
"""

# Failed invoices with attempts left, whose last attempt is from an earlier day (retry_spacing
# bin) and not yet give_up_after old.
DUE_RETRIES = f"""
with latest as ({LATEST_ATTEMPTS})
select invoices.invoice_id, latest.attempt_no + 1
from billing.invoices
inner join latest on invoices.invoice_id = latest.invoice_id
cross join billing.charge_retry_policy as policy
where invoices.status = 'payment_failed'
    and latest.status = 'failed'
    and latest.attempt_no < policy.max_attempts
    and latest.attempted_for < date_bin(policy.retry_spacing, %(now)s::timestamptz, timestamptz 'epoch')
    and latest.attempted_for > %(now)s::timestamptz - policy.give_up_after
order by invoices.invoice_number
"""

GIVEN_UP = f"""
with latest as ({LATEST_ATTEMPTS})
update billing.invoices
set status = 'uncollectible'
from latest, billing.charge_retry_policy as policy
where invoices.invoice_id = latest.invoice_id
    and invoices.status = 'payment_failed'
    and latest.status = 'failed'
    and latest.attempted_for <= %(now)s::timestamptz - policy.give_up_after
returning invoices.*
"""


def retry_failed_charges(gateway: PaymentGateway, *, now: datetime) -> ChargeSummary:
    """Give up on stale invoices, then retry the others once and resolve every pending attempt."""
    give_up_stale(now=now)
    record_attempts(DUE_RETRIES, now=now)
    return resolve_pending_attempts(gateway)


def give_up_stale(*, now: datetime) -> int:
    """Mark `uncollectible` the failed invoices whose last attempt is `give_up_after` old, with their webhook."""
    with connect() as connection:
        invoices = connection.cursor(row_factory=dict_row).execute(GIVEN_UP, {"now": now}).fetchall()
        for invoice in invoices:
            announce_uncollectible(connection, invoice)
    return len(invoices)
