"""Daily charge retries (SPEC §7): at most 3 attempts in all, then `uncollectible`.

A failed invoice gets one new attempt per day (its key is a digest of invoice × attempt number,
and a day with an attempt gets no second one), so re-running the day's run charges nothing twice.
An invoice whose last attempt is 72 hours old without success is given up instead of retried.
"""

from __future__ import annotations

from datetime import datetime

from psycopg.rows import dict_row

from billing.payments.charging import (
    MAX_ATTEMPTS, ChargeSummary, announce_uncollectible, record_attempts, resolve_pending_attempts,
)
from billing.payments.gateway import PaymentGateway
from billing.warehouse import connect

GIVE_UP_AFTER = "72 hours"

LATEST_ATTEMPTS = """
select distinct on (invoice_id) invoice_id, attempt_no, status, attempted_for
from billing.charge_attempts
order by invoice_id, attempt_no desc
"""

# Failed invoices whose last attempt is from an earlier day and under 72 hours old.
DUE_RETRIES = f"""
with latest as ({LATEST_ATTEMPTS})
select invoices.invoice_id, latest.attempt_no + 1
from billing.invoices
inner join latest on invoices.invoice_id = latest.invoice_id
where invoices.status = 'payment_failed'
    and latest.status = 'failed'
    and latest.attempt_no < {MAX_ATTEMPTS}
    and latest.attempted_for < date_trunc('day', %(now)s::timestamptz at time zone 'UTC') at time zone 'UTC'
    and latest.attempted_for > %(now)s::timestamptz - interval '{GIVE_UP_AFTER}'
order by invoices.invoice_number
"""

GIVEN_UP = f"""
with latest as ({LATEST_ATTEMPTS})
update billing.invoices
set status = 'uncollectible'
from latest
where invoices.invoice_id = latest.invoice_id
    and invoices.status = 'payment_failed'
    and latest.status = 'failed'
    and latest.attempted_for <= %(now)s::timestamptz - interval '{GIVE_UP_AFTER}'
returning invoices.*
"""


def retry_failed_charges(gateway: PaymentGateway, *, now: datetime) -> ChargeSummary:
    """Give up on stale invoices, then retry the others once and resolve every pending attempt."""
    give_up_stale(now=now)
    record_attempts(DUE_RETRIES, now=now)
    return resolve_pending_attempts(gateway)


def give_up_stale(*, now: datetime) -> int:
    """Mark `uncollectible` the failed invoices whose last attempt is 72 hours old, with their webhook."""
    with connect() as connection:
        invoices = connection.cursor(row_factory=dict_row).execute(GIVEN_UP, {"now": now}).fetchall()
        for invoice in invoices:
            announce_uncollectible(connection, invoice)
    return len(invoices)
