"""Helpers shared by the webhook tests: endpoints, events and reads of the webhook tables."""

from __future__ import annotations

import base64
import os
import socket

from billing.warehouse import connect
from billing.webhooks import enqueue_event

INVOICE_GENERATED = "billing.invoice.generated"
CHARGE_FAILED = "billing.charge.failed"


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def add_endpoint(
    endpoint_id: str, url: str, secret: str, *, event_types: list[str] | None = None, enabled: bool = True
) -> None:
    with connect() as connection:
        connection.execute(
            "insert into raw.webhook_endpoints (endpoint_id, url, secret, event_types, enabled)"
            " values (%s, %s, %s, %s, %s)",
            (endpoint_id, url, secret, event_types, enabled),
        )


def enqueue(event_type: str, subject_id: str, data: dict | None = None) -> str:
    with connect() as connection:
        return enqueue_event(connection, event_type=event_type, subject_id=subject_id, data=data or {})


def fetch_all(sql: str, params: tuple = ()) -> list[tuple]:
    with connect() as connection:
        return connection.execute(sql, params).fetchall()


def delivery(event_id: str, endpoint_id: str) -> tuple:
    """(status, attempt_count, next_attempt_at, delivered_at, last_error) of one delivery."""
    (row,) = fetch_all(
        "select status, attempt_count, next_attempt_at, delivered_at, last_error"
        " from billing.webhook_deliveries where event_id = %s and endpoint_id = %s",
        (event_id, endpoint_id),
    )
    return row


def attempts(event_id: str, endpoint_id: str) -> list[tuple]:
    """(attempt_no, attempted_at, response_status, latency_ms, error) per attempt, in order."""
    return fetch_all(
        "select attempt_no, attempted_at, response_status, latency_ms, error"
        " from billing.webhook_delivery_attempts where event_id = %s and endpoint_id = %s"
        " order by attempt_no",
        (event_id, endpoint_id),
    )


def endpoint_enabled(endpoint_id: str) -> bool:
    (row,) = fetch_all("select enabled from raw.webhook_endpoints where endpoint_id = %s", (endpoint_id,))
    return row[0]


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"
