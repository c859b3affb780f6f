"""Deliver the outbox: fan events out to subscribed endpoints, then attempt every due delivery.

Delivery is at least once (SPEC §8). Endpoints are served concurrently, by a bounded pool of
workers, one worker per endpoint: deliveries to one endpoint are attempted one at a time, oldest
event first; a run's shards (billing.shards) each serve their own endpoints. A dispatcher takes a
session advisory lock per endpoint, so two overlapping dispatchers never deliver to the same
endpoint at once either. A worker claims the endpoint's next
due deliveries a batch at a time (CLAIM_BATCH, in order) with `for update skip locked`; they stay
locked until the batch's attempts are recorded and committed, so a delivered one is never sent
again. A batch is committed after CLAIM_BATCH attempts or BATCH_SECONDS, whichever comes first: a
crash before that commit leaves its deliveries pending, and they are sent again with the same
`webhook-id`, which receivers use to drop duplicates.

Failed attempts are retried after about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h (each ±10 %,
so a burst of failures does not come back as a burst), then the delivery is dead-lettered. A 429
or 503 with `Retry-After` waits at least that long (capped at MAX_RETRY_AFTER), and the endpoint's
other deliveries wait for a later run. `410 Gone` disables the endpoint; deliveries to a disabled
endpoint are held, not attempted, until an operator enables it again. An address the SSRF guard
refuses is a failed attempt like any other: fixing `BILLING_WEBHOOK_ALLOW_HOSTS` (or the URL) lets
the next retry through. A replayed delivery (`replay.py`) starts the schedule again.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

import httpx
import psycopg
from psycopg.rows import class_row

from billing.shards import ONE_SHARD, Shard
from billing.warehouse import connect
from billing.webhooks.deliver import AttemptOutcome, send_webhook
from billing.webhooks.outbox import iso_timestamp
from billing.webhooks.sign import webhook_body
from billing.webhooks.transport import webhook_client

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
# Each retry delay is moved by up to ±JITTER of itself, by a digest of (event, endpoint, attempt).
JITTER = 0.10
# A Retry-After longer than this is taken as this: an endpoint cannot park a delivery for weeks.
MAX_RETRY_AFTER = timedelta(hours=24)
DEFAULT_TIMEOUT_SECONDS = 15.0
# Endpoints served at once by one dispatcher (each worker holds one warehouse connection).
DEFAULT_CONCURRENCY = 8
# One claim query and one commit per batch instead of per delivery (a commit waits for the WAL
# flush, a few ms here, more than a delivery to a fast receiver). The time bound keeps a slow
# endpoint's batch short: its recorded attempts are visible soon, and a crash resends little.
CLAIM_BATCH = 100
BATCH_SECONDS = 1.0

DELIVERED = "delivered"
FAILED = "failed"
DEAD_LETTERED = "dead_lettered"
ENDPOINTS_DISABLED = "endpoints_disabled"


@dataclass(frozen=True)
class DispatchSummary:
    """What one dispatch run did.

    delivered, failed (will be retried) and dead_lettered count this run's attempts by outcome;
    endpoints_disabled counts endpoints that answered 410; pending counts every delivery to the
    shard's endpoints still waiting after the run (due later, or held for a disabled endpoint).
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
    attempts_before_replay: int
    event_type: str
    event_created_at: datetime
    data: dict
    url: str
    secret: str = field(repr=False)
    previous_secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class _Settled:
    """An attempt and where it leaves its delivery: `status`, and when pending, `next_attempt_at`."""

    delivery: _DueDelivery
    outcome: AttemptOutcome
    attempted_at: datetime
    status: str
    next_attempt_at: datetime | None = None

    @property
    def attempt_no(self) -> int:
        return self.delivery.attempt_count + 1

    @property
    def counters(self) -> list[str]:
        """The summary counters it adds to."""
        gone = [ENDPOINTS_DISABLED] if self.outcome.endpoint_gone else []
        return [*gone, FAILED if self.status == "pending" else self.status]


def dispatch_webhooks(
    *,
    now: datetime | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    concurrency: int = DEFAULT_CONCURRENCY,
    shard: Shard = ONE_SHARD,
) -> DispatchSummary:
    """Fan out new events, then attempt each delivery to the shard's endpoints due by `now` once.

    `now` (default: the clock) decides which deliveries are due and stamps attempts and retries;
    tests pass it to step through the backoff schedule. `timeout` bounds each attempt;
    `concurrency` is how many endpoints are served at once.
    """
    tally: Counter[str] = Counter()
    with connect(autocommit=True) as connection:
        _fan_out(connection, at=now)
        # NOTE: read after the fan-out, on the warehouse's clock: what another dispatcher (a shard
        # of the same run, on another worker) fanned out while this one waited its turn is due too.
        due_by = now or connection.execute("select now()").fetchone()[0]
        endpoint_ids = _endpoints_with_due_deliveries(connection, due_by=due_by, shard=shard)
        if endpoint_ids:
            workers = max(1, min(concurrency, len(endpoint_ids)))
            with (
                webhook_client(timeout=timeout, max_connections=workers) as client,
                ThreadPoolExecutor(workers, thread_name_prefix="webhook-dispatch") as pool,
            ):
                deliver = partial(_deliver_to_endpoint, client=client, due_by=due_by, now=now, timeout=timeout)
                for outcomes in pool.map(deliver, endpoint_ids):
                    tally.update(outcomes)
        pending = _count_pending(connection, shard=shard)
    return DispatchSummary(
        delivered=tally[DELIVERED],
        failed=tally[FAILED],
        dead_lettered=tally[DEAD_LETTERED],
        pending=pending,
        endpoints_disabled=tally[ENDPOINTS_DISABLED],
    )


def _fan_out(connection: psycopg.Connection, *, at: datetime | None) -> int:
    """One delivery per new event × enabled endpoint subscribed to its type, due `at` (default: the
    warehouse's clock); returns how many."""
    # NOTE: one statement, so the events marked fanned out are exactly the ones fanned out, even
    # while other transactions commit new events. Concurrent runs take turns (the advisory lock):
    # were they to split a batch between them, an endpoint could get a later event first.
    with connection.transaction():
        connection.execute("select pg_advisory_xact_lock(hashtext('billing.webhook_fan_out'))")
        return _fan_out_new_events(connection, at=at)


def _fan_out_new_events(connection: psycopg.Connection, *, at: datetime | None) -> int:
    row = connection.execute(
        """
        with awaiting_fan_out as (
            select event_id, event_type, created_at
            from billing.webhook_events
            where fanned_out_at is null
            for update skip locked
        ),

        marked as (
            update billing.webhook_events as events
            set fanned_out_at = coalesce(%(at)s::timestamptz, now())
            from awaiting_fan_out
            where events.event_id = awaiting_fan_out.event_id
        ),

        inserted as (
            insert into billing.webhook_deliveries (event_id, endpoint_id, event_created_at, next_attempt_at)
            select
                awaiting_fan_out.event_id,
                endpoints.endpoint_id,
                awaiting_fan_out.created_at,
                coalesce(%(at)s::timestamptz, now())
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


def _endpoints_with_due_deliveries(connection: psycopg.Connection, *, due_by: datetime, shard: Shard) -> list[str]:
    """The shard's enabled endpoints with a delivery due by `due_by`, the longest-waiting first."""
    rows = connection.execute(
        """
        select deliveries.endpoint_id
        from billing.webhook_deliveries as deliveries
        inner join raw.webhook_endpoints as endpoints
            on deliveries.endpoint_id = endpoints.endpoint_id
        where
            deliveries.status = 'pending'
            and deliveries.next_attempt_at <= %(due_by)s
            and endpoints.enabled
            and billing.shard_of(deliveries.endpoint_id, %(shards)s) = %(shard)s
        group by 1
        order by min(deliveries.next_attempt_at), 1
        """,
        {"due_by": due_by, **shard.sql_params()},
    ).fetchall()
    return [endpoint_id for (endpoint_id,) in rows]


def _deliver_to_endpoint(
    endpoint_id: str, *, client: httpx.Client, due_by: datetime, now: datetime | None, timeout: float
) -> Counter[str]:
    """Attempt the endpoint's due deliveries one by one, oldest event first (one worker thread)."""
    tally: Counter[str] = Counter()
    # NOTE: the endpoint's advisory lock is a session lock: closing the connection releases it.
    with connect(autocommit=True) as connection:
        if not lock_endpoint(connection, endpoint_id):
            return tally  # NOTE: another dispatcher is delivering to it; it takes them all, in order.
        while _attempt_next_batch(
            connection, client, tally, endpoint_id=endpoint_id, due_by=due_by, now=now, timeout=timeout
        ):
            pass
    return tally


def _attempt_next_batch(
    connection: psycopg.Connection,
    client: httpx.Client,
    tally: Counter[str],
    *,
    endpoint_id: str,
    due_by: datetime,
    now: datetime | None,
    timeout: float,
) -> bool:
    """Claim the endpoint's next due deliveries, attempt them in order, record every attempt and
    commit; adds the outcomes to `tally`. False once none is due, or the endpoint said stop."""
    stop_at = time.monotonic() + BATCH_SECONDS
    go_on = True
    with connection.transaction():
        batch = _claim_due(connection, endpoint_id=endpoint_id, due_by=due_by, take_new=now is None)
        settled = []
        for delivery in batch:
            outcome = send_webhook(
                client,
                url=delivery.url,
                secret=delivery.secret,
                previous_secret=delivery.previous_secret,
                event_id=delivery.event_id,
                body=_body(delivery),
                timeout=timeout,
            )
            settled.append(_settle(delivery, outcome, attempted_at=now or datetime.now(UTC)))
            if outcome.throttled or outcome.endpoint_gone:
                # NOTE: throttled: the endpoint's other deliveries wait for a later run (not
                # attempted, so not counted) instead of hitting it again now. Gone: it is
                # disabled, and the rest of the batch is held with its other deliveries.
                go_on = False
                break
            if time.monotonic() > stop_at:
                break  # NOTE: the rest of the batch is released unattempted; the next claims it first
        _record(connection, settled)
    for attempt in settled:
        tally.update(attempt.counters)
    return go_on and bool(batch)


def lock_endpoint(connection: psycopg.Connection, endpoint_id: str) -> bool:
    """Take the endpoint's dispatch lock for this session; False if another session holds it.

    A dispatcher that finds an endpoint locked leaves its deliveries (still fanned out) to the
    holder. Closing the connection releases the lock.
    """
    return connection.execute(
        "select pg_try_advisory_lock(hashtext('billing.webhook_endpoint'), hashtext(%s))", (endpoint_id,)
    ).fetchone()[0]


def _claim_due(
    connection: psycopg.Connection, *, endpoint_id: str, due_by: datetime, take_new: bool
) -> list[_DueDelivery]:
    """The endpoint's oldest CLAIM_BATCH deliveries due by `due_by`, in event order, locked; with
    `take_new`, also those not yet attempted (fanned out or replayed since the run began) that are
    due by the wall clock."""
    # NOTE: take_new matters when runs overlap: the other run's worker finds this endpoint locked
    # and leaves, so this one delivers what that run fanned out. Retries stay with `due_by`,
    # so a run ends even when an endpoint keeps failing.
    # NOTE: the previous secret (a rotation's overlap) signs too until it expires; null expiry
    # means until an operator removes it. The batch reads the endpoint once: a rotation or an
    # operator's disable takes effect from the next batch.
    with connection.cursor(row_factory=class_row(_DueDelivery)) as cursor:
        return cursor.execute(
            """
            select
                deliveries.event_id,
                deliveries.endpoint_id,
                deliveries.attempt_count,
                deliveries.attempts_before_replay,
                events.event_type,
                deliveries.event_created_at,
                events.data,
                endpoints.url,
                endpoints.secret,
                case
                    when
                        endpoints.previous_secret_expires_at is null
                        or endpoints.previous_secret_expires_at > %(due_by)s
                        then endpoints.previous_secret
                end as previous_secret
            from billing.webhook_deliveries as deliveries
            inner join billing.webhook_events as events
                on deliveries.event_id = events.event_id
            inner join raw.webhook_endpoints as endpoints
                on deliveries.endpoint_id = endpoints.endpoint_id
            where
                deliveries.endpoint_id = %(endpoint_id)s
                and deliveries.status = 'pending'
                and endpoints.enabled
                and (
                    deliveries.next_attempt_at <= %(due_by)s
                    or (
                        %(take_new)s
                        and deliveries.attempt_count = deliveries.attempts_before_replay
                        and deliveries.next_attempt_at <= now()
                    )
                )
            order by deliveries.event_created_at, deliveries.event_id
            limit %(batch)s
            for update of deliveries skip locked
            """,
            {"endpoint_id": endpoint_id, "due_by": due_by, "take_new": take_new, "batch": CLAIM_BATCH},
        ).fetchall()


def _body(delivery: _DueDelivery) -> str:
    return webhook_body(
        event_type=delivery.event_type,
        timestamp=iso_timestamp(delivery.event_created_at),
        data=delivery.data,
    )


def _settle(delivery: _DueDelivery, outcome: AttemptOutcome, *, attempted_at: datetime) -> _Settled:
    """Where the attempt leaves the delivery: delivered, retried later, or dead-lettered."""
    attempt_no = delivery.attempt_count + 1
    logger.info(
        "webhook %s to endpoint %s, attempt %d: %s",
        delivery.event_id,
        delivery.endpoint_id,
        attempt_no,
        outcome.error or outcome.response_status,
    )
    if outcome.succeeded:
        return _Settled(delivery, outcome, attempted_at, DELIVERED)
    next_attempt_at = _next_attempt_at(delivery, outcome, attempt_no=attempt_no, attempted_at=attempted_at)
    if next_attempt_at is None:
        return _Settled(delivery, outcome, attempted_at, DEAD_LETTERED)
    return _Settled(delivery, outcome, attempted_at, "pending", next_attempt_at)


def _next_attempt_at(
    delivery: _DueDelivery, outcome: AttemptOutcome, *, attempt_no: int, attempted_at: datetime
) -> datetime | None:
    """When to try again after failed attempt `attempt_no`; None once the schedule is spent.

    The schedule's delay with jitter, or the endpoint's Retry-After (capped) if that is later.
    """
    delay = _retry_delay(attempt_no - delivery.attempts_before_replay)
    if delay is None:
        return None
    retry_at = attempted_at + _jittered(delay, delivery.event_id, delivery.endpoint_id, attempt_no)
    if outcome.retry_after is not None:
        retry_at = max(retry_at, attempted_at + min(outcome.retry_after, MAX_RETRY_AFTER))
    return retry_at


def _retry_delay(attempt_no: int) -> timedelta | None:
    """How long to wait after failed attempt `attempt_no` (1-based); None once retries are spent."""
    if attempt_no > len(RETRY_DELAYS):
        return None
    return RETRY_DELAYS[attempt_no - 1]


def _jittered(delay: timedelta, *key: object) -> timedelta:
    """`delay` moved by up to ±JITTER of itself, the same way every time for the same key."""
    digest = hashlib.sha256("|".join(map(str, key)).encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return delay * (1 + JITTER * (2 * fraction - 1))


def _record(connection: psycopg.Connection, settled: list[_Settled]) -> None:
    """Write a batch's attempts, move its deliveries on, and disable an endpoint that answered 410."""
    # NOTE: executemany sends each statement's rows in one round trip.
    with connection.cursor() as cursor:
        cursor.executemany(
            """
            insert into billing.webhook_delivery_attempts (
                event_id, endpoint_id, attempt_no, attempted_at, response_status, latency_ms, error
            )
            values (%s, %s, %s, %s, %s, %s, %s)
            """,
            [
                (
                    attempt.delivery.event_id,
                    attempt.delivery.endpoint_id,
                    attempt.attempt_no,
                    attempt.attempted_at,
                    attempt.outcome.response_status,
                    attempt.outcome.latency_ms,
                    attempt.outcome.error,
                )
                for attempt in settled
            ],
        )
        cursor.executemany(
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
            [
                {
                    "status": attempt.status,
                    "attempt_no": attempt.attempt_no,
                    "next_attempt_at": attempt.next_attempt_at,
                    "delivered_at": attempt.attempted_at if attempt.status == DELIVERED else None,
                    "last_error": attempt.outcome.error,
                    "event_id": attempt.delivery.event_id,
                    "endpoint_id": attempt.delivery.endpoint_id,
                }
                for attempt in settled
            ],
        )
    for attempt in settled:
        if attempt.outcome.endpoint_gone:
            _disable_endpoint(connection, attempt.delivery.endpoint_id)


def _disable_endpoint(connection: psycopg.Connection, endpoint_id: str) -> None:
    connection.execute("update raw.webhook_endpoints set enabled = false where endpoint_id = %s", (endpoint_id,))


def _count_pending(connection: psycopg.Connection, *, shard: Shard) -> int:
    return connection.execute(
        "select count(*) from billing.webhook_deliveries"
        " where status = 'pending' and billing.shard_of(endpoint_id, %(shards)s) = %(shard)s",
        shard.sql_params(),
    ).fetchone()[0]
