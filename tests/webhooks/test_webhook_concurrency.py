"""Endpoints are served concurrently, each endpoint's deliveries one at a time and in order."""

from __future__ import annotations

import threading
import time

from billing.webhooks import DispatchSummary, dispatch_webhooks
from conftest import query, reset_warehouse
from webhook_test_support import (  # noqa: F401 (allow_local_receivers: an autouse fixture)
    INVOICE_GENERATED,
    SlowReceiver,
    add_endpoint,
    allow_local_receivers,
    enqueue,
    new_secret,
)


def _slow_endpoints(names: tuple[str, ...], delay: float) -> tuple[SlowReceiver, dict[str, str]]:
    secrets = {name: new_secret() for name in names}
    return SlowReceiver(secrets, delay=delay), secrets


def test_two_slow_endpoints_are_served_at_once_each_in_order(warehouse):
    reset_warehouse()
    event_ids = [enqueue(INVOICE_GENERATED, f"inv_{n}") for n in range(1, 4)]
    receiver, secrets = _slow_endpoints(("a", "b"), delay=1.0)

    with receiver:
        for name in secrets:
            add_endpoint(f"ep_{name}", receiver.url_for(name), secrets[name])
        started = time.monotonic()
        summary = dispatch_webhooks()
        elapsed = time.monotonic() - started

    assert summary == DispatchSummary(delivered=6)
    assert receiver.max_in_flight == 2
    assert receiver.max_in_flight_by_endpoint == {"a": 1, "b": 1}
    assert [event_id for event_id, _ in receiver.accepted_by_endpoint["a"]] == event_ids
    assert [event_id for event_id, _ in receiver.accepted_by_endpoint["b"]] == event_ids
    assert 3.0 <= elapsed < 4.5, f"6 deliveries of 1 s took {elapsed:.1f} s"


def test_the_pool_is_bounded(warehouse):
    reset_warehouse()
    event_ids = [enqueue(INVOICE_GENERATED, f"inv_{n}") for n in range(1, 3)]
    receiver, secrets = _slow_endpoints(("a", "b", "c"), delay=0.1)

    with receiver:
        for name in secrets:
            add_endpoint(f"ep_{name}", receiver.url_for(name), secrets[name])
        summary = dispatch_webhooks(concurrency=2)

    assert summary == DispatchSummary(delivered=6)
    assert receiver.max_in_flight == 2
    for name in secrets:
        assert [event_id for event_id, _ in receiver.accepted_by_endpoint[name]] == event_ids


def test_overlapping_dispatchers_keep_each_endpoint_sequential_and_in_order(warehouse):
    reset_warehouse()
    event_ids = [enqueue(INVOICE_GENERATED, f"inv_{n}") for n in range(1, 5)]
    receiver, secrets = _slow_endpoints(("a", "b"), delay=0.1)
    summaries: list[DispatchSummary] = []

    with receiver:
        for name in secrets:
            add_endpoint(f"ep_{name}", receiver.url_for(name), secrets[name])
        dispatchers = [threading.Thread(target=lambda: summaries.append(dispatch_webhooks())) for _ in range(3)]
        for dispatcher in dispatchers:
            dispatcher.start()
        for dispatcher in dispatchers:
            dispatcher.join()
        assert dispatch_webhooks() == DispatchSummary()

    assert sum(summary.delivered for summary in summaries) == 8
    assert receiver.max_in_flight_by_endpoint == {"a": 1, "b": 1}
    for name in secrets:
        assert [event_id for event_id, _ in receiver.accepted_by_endpoint[name]] == event_ids
    assert query("select count(*) from billing.webhook_delivery_attempts") == [(8,)]
