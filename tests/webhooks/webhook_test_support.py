"""Helpers shared by the webhook tests: endpoints, events and reads of the webhook tables."""

from __future__ import annotations

import base64
import os
import socket
import threading
import time
from collections import Counter
from datetime import datetime, timedelta

import pytest
from billing.warehouse import connect
from billing.webhooks import ALLOW_HOSTS_ENV, WebhookReceiver, enqueue_event
from billing.webhooks.dispatch import JITTER
from conftest import query

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


def delivery(event_id: str, endpoint_id: str) -> tuple:
    """(status, attempt_count, next_attempt_at, delivered_at, last_error) of one delivery."""
    (row,) = query(
        "select status, attempt_count, next_attempt_at, delivered_at, last_error"
        " from billing.webhook_deliveries where event_id = %s and endpoint_id = %s",
        event_id, endpoint_id,
    )
    return row


def attempts(event_id: str, endpoint_id: str) -> list[tuple]:
    """(attempt_no, attempted_at, response_status, latency_ms, error) per attempt, in order."""
    return query(
        "select attempt_no, attempted_at, response_status, latency_ms, error"
        " from billing.webhook_delivery_attempts where event_id = %s and endpoint_id = %s"
        " order by attempt_no",
        event_id, endpoint_id,
    )


def endpoint_enabled(endpoint_id: str) -> bool:
    (row,) = query("select enabled from raw.webhook_endpoints where endpoint_id = %s", endpoint_id)
    return row[0]


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}/hook"


# NOTE: pytest-httpserver listens on "localhost", WebhookReceiver on 127.0.0.1; the SSRF guard
# refuses both unless allowed. Test modules import this autouse fixture; SSRF tests override it.
LOCAL_RECEIVERS = "127.0.0.1,localhost"


@pytest.fixture(autouse=True)
def allow_local_receivers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOW_HOSTS_ENV, LOCAL_RECEIVERS)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def assert_retry_at(next_attempt_at: datetime, attempted_at: datetime, delay: timedelta) -> None:
    """next_attempt_at is `delay` after attempted_at, give or take the dispatcher's jitter."""
    low, high = attempted_at + delay * (1 - JITTER), attempted_at + delay * (1 + JITTER)
    assert low <= next_attempt_at <= high, f"{next_attempt_at} not within {low} … {high}"


class SlowReceiver(WebhookReceiver):
    """A WebhookReceiver that answers each request after `delay` seconds and records how many
    requests it was serving at once: overall (`max_in_flight`) and per endpoint."""

    def __init__(self, secrets: dict[str, str], *, delay: float) -> None:
        super().__init__(secrets)
        self.delay = delay
        self._counting = threading.Lock()
        self._in_flight: Counter[str] = Counter()
        self.max_in_flight = 0
        self.max_in_flight_by_endpoint: Counter[str] = Counter()

    def _receive(self, path: str, body: bytes, headers: dict[str, str]):
        name = path.strip("/").split("?")[0]
        with self._counting:
            self._in_flight[name] += 1
            self.max_in_flight = max(self.max_in_flight, sum(self._in_flight.values()))
            self.max_in_flight_by_endpoint[name] = max(self.max_in_flight_by_endpoint[name], self._in_flight[name])
        try:
            time.sleep(self.delay)
            return super()._receive(path, body, headers)
        finally:
            with self._counting:
                self._in_flight[name] -= 1
