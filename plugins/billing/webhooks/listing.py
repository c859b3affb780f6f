"""What the operator sees of webhooks: events with their deliveries, and endpoints. No secrets:
the queries below never select them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

from psycopg.rows import class_row

from billing.warehouse import connect

DELIVERY_STATUSES = ("pending", "delivered", "dead_lettered")


@dataclass(frozen=True)
class DeliveryRow:
    """One event × endpoint delivery; endpoint_id is None for an event without deliveries."""

    event_id: str
    event_type: str
    created_at: datetime
    fanned_out_at: datetime | None
    endpoint_id: str | None
    status: str | None
    attempt_count: int | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None
    endpoint_enabled: bool | None


@dataclass(frozen=True)
class EndpointRow:
    endpoint_id: str
    url: str
    enabled: bool
    event_types: list[str] | None
    pending: int
    delivered: int
    dead_lettered: int
    last_delivered_at: datetime | None
    previous_secret_valid_until: datetime | None
    has_previous_secret: bool


def list_deliveries(*, status: str | None = None, limit: int = 50) -> list[DeliveryRow]:
    """The `limit` latest events (with a delivery in `status`, if given), each with its deliveries."""
    if status is not None and status not in DELIVERY_STATUSES:
        raise ValueError(f"status must be one of {', '.join(DELIVERY_STATUSES)}, got {status!r}")
    with connect() as connection, connection.cursor(row_factory=class_row(DeliveryRow)) as cursor:
        return cursor.execute(
            """
            with chosen_events as (
                select event_id, event_type, created_at, fanned_out_at
                from billing.webhook_events as events
                where
                    %(status)s::text is null
                    or exists (
                        select 1
                        from billing.webhook_deliveries as deliveries
                        where
                            deliveries.event_id = events.event_id
                            and deliveries.status = %(status)s
                    )
                order by created_at desc, event_id
                limit %(limit)s
            )

            select
                chosen_events.event_id,
                chosen_events.event_type,
                chosen_events.created_at,
                chosen_events.fanned_out_at,
                deliveries.endpoint_id,
                deliveries.status,
                deliveries.attempt_count,
                deliveries.next_attempt_at,
                deliveries.delivered_at,
                deliveries.last_error,
                endpoints.enabled as endpoint_enabled
            from chosen_events
            left join billing.webhook_deliveries as deliveries
                on
                    chosen_events.event_id = deliveries.event_id
                    and (%(status)s::text is null or deliveries.status = %(status)s)
            left join raw.webhook_endpoints as endpoints
                on deliveries.endpoint_id = endpoints.endpoint_id
            order by chosen_events.created_at desc, chosen_events.event_id, deliveries.endpoint_id
            """,
            {"status": status, "limit": limit},
        ).fetchall()


def list_endpoints() -> list[EndpointRow]:
    """Every endpoint with its delivery counts and rotation state, never its secrets."""
    with connect() as connection, connection.cursor(row_factory=class_row(EndpointRow)) as cursor:
        rows = cursor.execute(
            """
            with delivery_counts as (
                select
                    endpoint_id,
                    count(*) filter (where status = 'pending') as pending,
                    count(*) filter (where status = 'delivered') as delivered,
                    count(*) filter (where status = 'dead_lettered') as dead_lettered,
                    max(delivered_at) as last_delivered_at
                from billing.webhook_deliveries
                group by 1
            )

            select
                endpoints.endpoint_id,
                endpoints.url,
                endpoints.enabled,
                endpoints.event_types,
                coalesce(delivery_counts.pending, 0) as pending,
                coalesce(delivery_counts.delivered, 0) as delivered,
                coalesce(delivery_counts.dead_lettered, 0) as dead_lettered,
                delivery_counts.last_delivered_at,
                endpoints.previous_secret_expires_at as previous_secret_valid_until,
                endpoints.previous_secret is not null
                and coalesce(endpoints.previous_secret_expires_at > now(), true) as has_previous_secret
            from raw.webhook_endpoints as endpoints
            left join delivery_counts
                on endpoints.endpoint_id = delivery_counts.endpoint_id
            order by 1
            """
        ).fetchall()
    return [
        EndpointRow(**{**row.__dict__, "url": redacted_url(row.url)}) for row in rows
    ]


def redacted_url(url: str) -> str:
    """The URL without a password in its user-info (`https://user:…@host/`)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:…@{host}"))
