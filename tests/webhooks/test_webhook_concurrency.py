"""Endpoints are served concurrently, each endpoint's deliveries one at a time and in order; so are
the endpoints of a run's shards, on several workers at once."""

from __future__ import annotations

import threading
import time

from billing.shards import Shard
from billing.warehouse import connect
from billing.webhooks import DispatchSummary, WebhookReceiver, dispatch_webhooks
from billing.webhooks.dispatch import _fan_out
from conftest import query, reset_warehouse
from webhook_test_support import (  # noqa: F401 (allow_local_receivers: an autouse fixture)
    INVOICE_GENERATED,
    SlowReceiver,
    add_endpoint,
    allow_local_receivers,
    enqueue,
    new_secret,
)

FAN_OUT_LOCK = "hashtext('billing.webhook_fan_out')"


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


def test_a_shard_delivers_what_another_shard_fanned_out_while_it_waited(warehouse):
    # Two shards of a run (billing.shards) dispatch at once: `first` is shard 0's endpoint (of 2),
    # `second` shard 1's. Shard 0 fans every event out while shard 1 waits for its turn.
    reset_warehouse()
    event_ids = [enqueue(INVOICE_GENERATED, f"inv_{n}") for n in range(1, 3)]
    secrets = {name: new_secret() for name in ("first", "second")}
    summaries: list[DispatchSummary] = []

    with WebhookReceiver(secrets) as receiver, connect(autocommit=True) as shard_0:
        for name in secrets:
            add_endpoint(name, receiver.url_for(name), secrets[name])
        assert shard_0.execute(f"select pg_try_advisory_lock({FAN_OUT_LOCK})").fetchone() == (True,)
        shard_1 = threading.Thread(target=lambda: summaries.append(dispatch_webhooks(shard=Shard(1, 2))))
        shard_1.start()
        time.sleep(1)  # shard 1 waits for the fan-out lock
        assert _fan_out(shard_0, at=None) == 4
        shard_0.execute(f"select pg_advisory_unlock({FAN_OUT_LOCK})")
        shard_1.join()

    assert summaries == [DispatchSummary(delivered=2, pending=0)]
    assert [event_id for event_id, _ in receiver.accepted_by_endpoint["second"]] == event_ids
    assert receiver.accepted_by_endpoint["first"] == []
    assert query("select endpoint_id, status from billing.webhook_deliveries order by 1, 2") == [
        ("first", "pending"), ("first", "pending"), ("second", "delivered"), ("second", "delivered"),
    ]
