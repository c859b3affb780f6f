"""Deliver the outbox: fan events out to subscribed endpoints, then attempt every due delivery.

Delivery is at least once (SPEC §8). Each delivery is claimed with `for update skip locked` and
stays locked until its attempt is recorded, so concurrent dispatchers never send the same
delivery at the same time, and a delivered one is never sent again. A crash between the POST and
the commit leaves the delivery pending: it is sent again, with the same `webhook-id`, which
receivers use to drop duplicates.

Failed attempts are retried after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h, then the delivery
is dead-lettered. `410 Gone` disables the endpoint; deliveries to a disabled endpoint are held,
not attempted, until an operator enables it again.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import httpx
import psycopg
from psycopg.rows import class_row

from billing.warehouse import connect
from billing.webhooks.deliver import AttemptOutcome, send_webhook
from billing.webhooks.outbox import iso_timestamp
from billing.webhooks.sign import webhook_body

logger = logging.getLogger(__name__)

RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1

DELIVERED = "delivered"
FAILED = "failed"
DEAD_LETTERED = "dead_lettered"
ENDPOINTS_DISABLED = "endpoints_disabled"


@dataclass(frozen=True)
class DispatchSummary:
    """What one dispatch run did.

    delivered, failed (will be retried) and dead_lettered count this run's attempts by outcome;
    endpoints_disabled counts endpoints that answered 410; pending counts every delivery still
    waiting after the run (due later, or held for a disabled endpoint).
    """

    delivered: int = 0
    failed: int = 0
    dead_lettered: int = 0
    pending: int = 0
    endpoints_disabled: int = 0


@dataclass(frozen=True)
class _DueDelivery:
    event_id: str
    endpoint_id: str
    attempt_count: int
    event_type: str
    event_created_at: datetime
    data: dict
    url: str
    secret: str = field(repr=False)


def dispatch_webhooks(*, now: datetime | None = None, timeout: float = 15.0) -> DispatchSummary:
    """Fan out new events, then attempt each delivery due by `now` once.

    `now` (default: the wall clock) decides which deliveries are due and stamps attempts and
    retries; tests pass it to step through the backoff schedule. `timeout` bounds each request.
    """
    due_by = now or datetime.now(timezone.utc)
    tally: Counter[str] = Counter()
    with connect(autocommit=True) as connection, httpx.Client(timeout=timeout) as client:
        _fan_out(connection, at=due_by)
        while (outcomes := _attempt_next_due(connection, client, due_by=due_by, now=now)) is not None:
            tally.update(outcomes)
        pending = _count_pending(connection)
    return DispatchSummary(
        delivered=tally[DELIVERED],
        failed=tally[FAILED],
        dead_lettered=tally[DEAD_LETTERED],
        pending=pending,
        endpoints_disabled=tally[ENDPOINTS_DISABLED],
    )


def _fan_out(connection: psycopg.Connection, *, at: datetime) -> int:
    """One delivery per new event × enabled endpoint subscribed to its type; returns how many."""
    # NOTE: one statement, so the events marked fanned out are exactly the ones fanned out, even
    # while other transactions commit new events; skip locked lets a concurrent run pass them by.
    row = connection.execute(
        """
        with awaiting_fan_out as (
            select event_id, event_type
            from billing.webhook_events
            where fanned_out_at is null
            for update skip locked
        ),

        marked as (
            update billing.webhook_events as events
            set fanned_out_at = %(at)s
            from awaiting_fan_out
            where events.event_id = awaiting_fan_out.event_id
        ),

        inserted as (
            insert into billing.webhook_deliveries (event_id, endpoint_id, next_attempt_at)
            select
                awaiting_fan_out.event_id,
                endpoints.endpoint_id,
                %(at)s
            from awaiting_fan_out
            inner join raw.webhook_endpoints as endpoints
                on
                    endpoints.enabled
                    and (
                        endpoints.event_types is null
                        or awaiting_fan_out.event_type = any(endpoints.event_types)
                    )
            on conflict do nothing
            returning 1
        )

        select count(*) from inserted
        """,
        {"at": at},
    ).fetchone()
    return row[0]


def _attempt_next_due(
    connection: psycopg.Connection, client: httpx.Client, *, due_by: datetime, now: datetime | None
) -> list[str] | None:
    """Claim, attempt and settle one due delivery in one transaction; None when none is left."""
    with connection.transaction():
        delivery = _claim_next_due(connection, due_by=due_by)
        if delivery is None:
            return None
        outcome = send_webhook(
            client, url=delivery.url, secret=delivery.secret, event_id=delivery.event_id, body=_body(delivery)
        )
        return _settle(connection, delivery, outcome, attempted_at=now or datetime.now(timezone.utc))


def _claim_next_due(connection: psycopg.Connection, *, due_by: datetime) -> _DueDelivery | None:
    with connection.cursor(row_factory=class_row(_DueDelivery)) as cursor:
        return cursor.execute(
            """
            select
                deliveries.event_id,
                deliveries.endpoint_id,
                deliveries.attempt_count,
                events.event_type,
                events.created_at as event_created_at,
                events.data,
                endpoints.url,
                endpoints.secret
            from billing.webhook_deliveries as deliveries
            inner join billing.webhook_events as events
                on deliveries.event_id = events.event_id
            inner join raw.webhook_endpoints as endpoints
                on deliveries.endpoint_id = endpoints.endpoint_id
            where
                deliveries.status = 'pending'
                and deliveries.next_attempt_at <= %(due_by)s
                and endpoints.enabled
            order by deliveries.next_attempt_at, deliveries.event_id, deliveries.endpoint_id
            limit 1
            for update of deliveries skip locked
            """,
            {"due_by": due_by},
        ).fetchone()


def _body(delivery: _DueDelivery) -> str:
    return webhook_body(
        event_type=delivery.event_type,
        timestamp=iso_timestamp(delivery.event_created_at),
        data=delivery.data,
    )


def _settle(
    connection: psycopg.Connection, delivery: _DueDelivery, outcome: AttemptOutcome, *, attempted_at: datetime
) -> list[str]:
    """Record the attempt and move the delivery on; returns the summary counters it adds to."""
    attempt_no = delivery.attempt_count + 1
    _record_attempt(connection, delivery, outcome, attempt_no=attempt_no, attempted_at=attempted_at)
    logger.info(
        "webhook %s to endpoint %s, attempt %d: %s",
        delivery.event_id,
        delivery.endpoint_id,
        attempt_no,
        outcome.error or outcome.response_status,
    )
    if outcome.succeeded:
        _update_delivery(connection, delivery, attempt_no=attempt_no, status=DELIVERED, delivered_at=attempted_at)
        return [DELIVERED]

    counters = []
    if outcome.endpoint_gone:
        _disable_endpoint(connection, delivery.endpoint_id)
        counters.append(ENDPOINTS_DISABLED)
    delay = _retry_delay(attempt_no)
    if delay is None:
        _update_delivery(connection, delivery, attempt_no=attempt_no, status=DEAD_LETTERED, last_error=outcome.error)
        return [*counters, DEAD_LETTERED]
    _update_delivery(
        connection,
        delivery,
        attempt_no=attempt_no,
        status="pending",
        next_attempt_at=attempted_at + delay,
        last_error=outcome.error,
    )
    return [*counters, FAILED]


def _retry_delay(attempt_no: int) -> timedelta | None:
    """How long to wait after failed attempt `attempt_no` (1-based); None once retries are spent."""
    if attempt_no > len(RETRY_DELAYS):
        return None
    return RETRY_DELAYS[attempt_no - 1]


def _record_attempt(
    connection: psycopg.Connection,
    delivery: _DueDelivery,
    outcome: AttemptOutcome,
    *,
    attempt_no: int,
    attempted_at: datetime,
) -> None:
    connection.execute(
        """
        insert into billing.webhook_delivery_attempts (
            event_id, endpoint_id, attempt_no, attempted_at, response_status, latency_ms, error
        )
        values (%s, %s, %s, %s, %s, %s, %s)
        """,
        (
            delivery.event_id,
            delivery.endpoint_id,
            attempt_no,
            attempted_at,
            outcome.response_status,
            outcome.latency_ms,
            outcome.error,
        ),
    )


def _update_delivery(
    connection: psycopg.Connection,
    delivery: _DueDelivery,
    *,
    attempt_no: int,
    status: str,
    next_attempt_at: datetime | None = None,
    delivered_at: datetime | None = None,
    last_error: str | None = None,
) -> None:
    connection.execute(
        """
        update billing.webhook_deliveries
        set
            status = %(status)s,
            attempt_count = %(attempt_no)s,
            next_attempt_at = coalesce(%(next_attempt_at)s, next_attempt_at),
            delivered_at = %(delivered_at)s,
            last_error = %(last_error)s
        where event_id = %(event_id)s and endpoint_id = %(endpoint_id)s
        """,
        {
            "status": status,
            "attempt_no": attempt_no,
            "next_attempt_at": next_attempt_at,
            "delivered_at": delivered_at,
            "last_error": last_error,
            "event_id": delivery.event_id,
            "endpoint_id": delivery.endpoint_id,
        },
    )


def _disable_endpoint(connection: psycopg.Connection, endpoint_id: str) -> None:
    connection.execute("update raw.webhook_endpoints set enabled = false where endpoint_id = %s", (endpoint_id,))


def _count_pending(connection: psycopg.Connection) -> int:
    return connection.execute(
        "select count(*) from billing.webhook_deliveries where status = 'pending'"
    ).fetchone()[0]
