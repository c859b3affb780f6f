"""Replay an event: send it again to the endpoints it went (or failed to go) to.

Its deliveries go back to pending, due now, with the same `webhook-id` (receivers that keep ids
see a duplicate, which is what a replay is). The attempt history is kept and attempt numbers
carry on, but the retry schedule starts again, so a dead-lettered delivery gets all its retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from billing.warehouse import connect
from billing.webhooks.errors import EventNotFound, NothingToReplay


@dataclass(frozen=True)
class Replay:
    """The endpoints the event will be sent to again; held ones are disabled (sent once enabled)."""

    event_id: str
    endpoint_ids: tuple[str, ...]
    held_endpoint_ids: tuple[str, ...]


def replay_event(event_id: str, *, endpoint_id: str | None = None, now: datetime | None = None) -> Replay:
    """Reset the event's deliveries (or only the one to `endpoint_id`) to pending, due `now`."""
    due_at = now or datetime.now(UTC)
    with connect() as connection:
        event = connection.execute(
            "select fanned_out_at from billing.webhook_events where event_id = %s", (event_id,)
        ).fetchone()
        if event is None:
            raise EventNotFound(f"no webhook event {event_id!r}")
        if event[0] is None:
            raise NothingToReplay(
                f"event {event_id} has not been sent yet: the next dispatch delivers it"
            )
        # NOTE: a delivery being attempted right now is locked; this waits for its outcome,
        # then queues it again, whatever the outcome was.
        rows = connection.execute(
            """
            update billing.webhook_deliveries as deliveries
            set
                status = 'pending',
                next_attempt_at = %(due_at)s,
                delivered_at = null,
                last_error = null,
                attempts_before_replay = deliveries.attempt_count
            where
                deliveries.event_id = %(event_id)s
                and (%(endpoint_id)s::text is null or deliveries.endpoint_id = %(endpoint_id)s)
            returning
                deliveries.endpoint_id,
                coalesce(
                    (
                        select endpoints.enabled
                        from raw.webhook_endpoints as endpoints
                        where endpoints.endpoint_id = deliveries.endpoint_id
                    ),
                    false
                )
            """,
            {"due_at": due_at, "event_id": event_id, "endpoint_id": endpoint_id},
        ).fetchall()
        if not rows:
            raise NothingToReplay(_nothing_to_replay(connection, event_id, endpoint_id))
    rows.sort()
    return Replay(
        event_id,
        endpoint_ids=tuple(endpoint for endpoint, _ in rows),
        held_endpoint_ids=tuple(endpoint for endpoint, enabled in rows if not enabled),
    )


def _nothing_to_replay(connection, event_id: str, endpoint_id: str | None) -> str:
    if endpoint_id is None:
        return f"event {event_id} was sent to no endpoint (none was subscribed to it)"
    sent_to = [
        endpoint
        for (endpoint,) in connection.execute(
            "select endpoint_id from billing.webhook_deliveries where event_id = %s order by 1", (event_id,)
        )
    ]
    return f"event {event_id} was not sent to endpoint {endpoint_id!r}" + (
        f" (it was sent to: {', '.join(sent_to)})" if sent_to else " (it was sent to no endpoint)"
    )
