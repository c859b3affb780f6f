"""The webhook outbox: record an event in the caller's transaction, once per thing it describes.

The caller changes state and enqueues its event on the same connection, in the same transaction
(SPEC §8), so either both happen or neither does. `dispatch_webhooks` delivers it later.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from billing.idempotency import idempotency_key

EVENT_TYPES = frozenset(
    {
        "billing.invoice.generated",
        "billing.charge.succeeded",
        "billing.charge.failed",
        "billing.invoice.uncollectible",
        "billing.invoice.voided",
        "billing.credit_note.created",
        "billing.refund.succeeded",
        "billing.refund.failed",
        "billing.subscriber_overage",
        "billing.subscriber_limit.reached",
        "billing.subscriber_usage",
        "billing.events.rejected",
        "billing.run.failed",
        "billing.usage_sync.mismatch",
    }
)


class UnknownEventType(ValueError):
    """The event type is not one SPEC §8 defines."""

    code = "unknown_event_type"


def enqueue_event(connection: psycopg.Connection, *, event_type: str, subject_id: str, data: dict) -> str:
    """Add one event to the outbox in the caller's transaction; return its id.

    The id is derived from (event_type, subject_id): enqueueing the same thing again is a no-op
    and returns the same id (the first event's data is kept).
    """
    if event_type not in EVENT_TYPES:
        raise UnknownEventType(f"unknown webhook event type: {event_type!r}")
    event_id = event_id_for(event_type, subject_id)
    connection.execute(
        """
        insert into billing.webhook_events (event_id, event_type, subject_id, data)
        values (%s, %s, %s, %s)
        on conflict (event_id) do nothing
        """,
        (event_id, event_type, subject_id, Jsonb(data, dumps=dumps_event_data)),
    )
    return event_id


def enqueued_subjects(connection: psycopg.Connection, event_type: str, subject_ids: list[str]) -> set[str]:
    """Those of `subject_ids` whose `event_type` event is already in the outbox (one query)."""
    subject_of = {event_id_for(event_type, subject_id): subject_id for subject_id in subject_ids}
    rows = connection.execute(
        "select event_id from billing.webhook_events where event_id = any(%s)", (list(subject_of),)
    ).fetchall()
    return {subject_of[event_id] for (event_id,) in rows}


def event_id_for(event_type: str, subject_id: str) -> str:
    """The deterministic id of the event of `event_type` about `subject_id`."""
    return idempotency_key("msg", event_type, subject_id)


def dumps_event_data(data: Any) -> str:
    """JSON for event data, accepting Decimal and date/datetime values."""
    return json.dumps(data, default=_encode_extra_types, separators=(",", ":"))


def _encode_extra_types(value: Any) -> Any:
    if isinstance(value, Decimal):
        # NOTE: a fractional Decimal becomes a string, never a float, so it stays exact.
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, datetime):
        return iso_timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"webhook event data cannot hold a {type(value).__name__}")


def iso_timestamp(moment: datetime) -> str:
    """ISO 8601 with a `Z` suffix for aware datetimes (naive ones are written as they are)."""
    if moment.tzinfo is None:
        return moment.isoformat()
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
