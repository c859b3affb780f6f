"""Retry policy against real endpoints: a receiver that comes back, Retry-After, a per-attempt
deadline, and replays that start the schedule again."""

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from billing.webhooks import MAX_RETRY_AFTER, DispatchSummary, WebhookReceiver, dispatch_webhooks, replay_event
from conftest import reset_warehouse
from pytest_httpserver import HTTPServer
from webhook_test_support import (  # noqa: F401 (allow_local_receivers: an autouse fixture)
    INVOICE_GENERATED,
    add_endpoint,
    allow_local_receivers,
    assert_retry_at,
    attempts,
    delivery,
    enqueue,
    free_port,
    new_secret,
)


def _now() -> datetime:
    return datetime.now(UTC)


def test_receiver_down_then_up_gets_each_event_once_per_endpoint_on_schedule(warehouse):
    reset_warehouse()
    secrets = {"a": new_secret(), "b": new_secret()}
    port = free_port()
    add_endpoint("ep_a", f"http://127.0.0.1:{port}/a", secrets["a"])
    add_endpoint("ep_b", f"http://127.0.0.1:{port}/b", secrets["b"])
    first = enqueue(INVOICE_GENERATED, "inv_1")
    second = enqueue(INVOICE_GENERATED, "inv_2")
    now = _now()

    down = dispatch_webhooks(now=now)

    assert down == DispatchSummary(failed=4, pending=4)
    for event_id in (first, second):
        for endpoint_id in ("ep_a", "ep_b"):
            status, attempt_count, next_attempt_at, _, last_error = delivery(event_id, endpoint_id)
            assert (status, attempt_count) == ("pending", 1)
            assert last_error.startswith("ConnectError: ")
            assert_retry_at(next_attempt_at, now, timedelta(seconds=5))

    with WebhookReceiver(secrets, port=port) as receiver:
        before_the_retry = dispatch_webhooks(now=now + timedelta(seconds=4.4))
        assert before_the_retry == DispatchSummary(pending=4)
        assert receiver.accepted == []
        up = dispatch_webhooks(now=now + timedelta(seconds=6))
        much_later = dispatch_webhooks(now=now + timedelta(days=3))

    assert up == DispatchSummary(delivered=4)
    assert much_later == DispatchSummary()
    assert receiver.rejected == 0
    assert [event_id for event_id, _ in receiver.accepted_by_endpoint["a"]] == [first, second]
    assert [event_id for event_id, _ in receiver.accepted_by_endpoint["b"]] == [first, second]
    for event_id in (first, second):
        for endpoint_id in ("ep_a", "ep_b"):
            assert [(no, status) for no, _, status, _, _ in attempts(event_id, endpoint_id)] == [(1, None), (2, 204)]
            assert delivery(event_id, endpoint_id)[:2] == ("delivered", 2)


def test_retry_after_seconds_on_429_delays_the_next_attempt(warehouse, httpserver: HTTPServer):
    reset_warehouse()
    event_id = enqueue(INVOICE_GENERATED, "inv_1")
    add_endpoint("ep_1", httpserver.url_for("/hook"), new_secret())
    httpserver.expect_ordered_request("/hook", method="POST").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "120"}
    )
    httpserver.expect_ordered_request("/hook", method="POST").respond_with_data("", status=204)
    now = _now()

    throttled = dispatch_webhooks(now=now)

    assert throttled == DispatchSummary(failed=1, pending=1)
    status, attempt_count, next_attempt_at, _, last_error = delivery(event_id, "ep_1")
    assert (status, attempt_count, last_error) == ("pending", 1, "HTTP 429 (Retry-After: 120 s)")
    assert next_attempt_at >= now + timedelta(seconds=120)
    assert next_attempt_at == now + timedelta(seconds=120)  # 120 s is later than 5 s ± 10 %
    [(_, _, response_status, latency_ms, error)] = attempts(event_id, "ep_1")
    assert (response_status, error) == (429, "HTTP 429 (Retry-After: 120 s)")
    assert latency_ms >= 0

    assert dispatch_webhooks(now=now + timedelta(seconds=119)) == DispatchSummary(pending=1)
    assert len(httpserver.log) == 1
    assert dispatch_webhooks(now=now + timedelta(seconds=120)) == DispatchSummary(delivered=1)
    httpserver.check_assertions()


def test_retry_after_http_date_on_503_delays_the_next_attempt(warehouse, httpserver: HTTPServer):
    reset_warehouse()
    event_id = enqueue(INVOICE_GENERATED, "inv_1")
    add_endpoint("ep_1", httpserver.url_for("/hook"), new_secret())
    retry_at = _now().replace(microsecond=0) + timedelta(hours=1)
    httpserver.expect_request("/hook", method="POST").respond_with_data(
        "", status=503, headers={"Retry-After": format_datetime(retry_at, usegmt=True)}
    )
    now = _now()

    dispatch_webhooks(now=now)

    next_attempt_at = delivery(event_id, "ep_1")[2]
    # NOTE: an HTTP-date is a delay from the wall clock when the answer came, a moment after `now`.
    assert now + timedelta(minutes=59) <= next_attempt_at <= now + timedelta(hours=1)


def test_retry_after_is_capped_and_ignored_on_other_statuses(warehouse, httpserver: HTTPServer):
    reset_warehouse()
    capped = enqueue(INVOICE_GENERATED, "inv_1")
    add_endpoint("ep_capped", httpserver.url_for("/capped"), new_secret())
    httpserver.expect_request("/capped", method="POST").respond_with_data(
        "", status=429, headers={"Retry-After": "99999999999"}
    )
    ignored = enqueue(INVOICE_GENERATED, "inv_2")
    add_endpoint("ep_500", httpserver.url_for("/500"), new_secret(), event_types=[INVOICE_GENERATED])
    httpserver.expect_request("/500", method="POST").respond_with_data("", status=500, headers={"Retry-After": "600"})
    not_a_delay = enqueue("billing.charge.failed", "ikey_1")
    add_endpoint("ep_garbled", httpserver.url_for("/garbled"), new_secret(), event_types=["billing.charge.failed"])
    httpserver.expect_request("/garbled", method="POST").respond_with_data(
        "", status=429, headers={"Retry-After": "soon"}
    )
    now = _now()

    dispatch_webhooks(now=now)

    assert MAX_RETRY_AFTER == timedelta(hours=24)
    assert delivery(capped, "ep_capped")[2] == now + MAX_RETRY_AFTER
    assert delivery(ignored, "ep_500")[4] == "HTTP 500"
    assert_retry_at(delivery(ignored, "ep_500")[2], now, timedelta(seconds=5))
    assert delivery(not_a_delay, "ep_garbled")[4] == "HTTP 429"
    assert_retry_at(delivery(not_a_delay, "ep_garbled")[2], now, timedelta(seconds=5))


def test_a_throttling_endpoint_gets_no_more_attempts_in_that_run(warehouse, httpserver: HTTPServer):
    reset_warehouse()
    first = enqueue(INVOICE_GENERATED, "inv_1")
    second = enqueue(INVOICE_GENERATED, "inv_2")
    add_endpoint("ep_1", httpserver.url_for("/hook"), new_secret())
    httpserver.expect_request("/hook", method="POST").respond_with_data("", status=429, headers={"Retry-After": "60"})
    now = _now()

    summary = dispatch_webhooks(now=now)

    assert summary == DispatchSummary(failed=1, pending=2)
    assert [request.headers["webhook-id"] for request, _ in httpserver.log] == [first]
    assert delivery(second, "ep_1")[:2] == ("pending", 0)
    assert attempts(second, "ep_1") == []


def test_the_timeout_bounds_the_whole_attempt_not_each_read(warehouse):
    reset_warehouse()
    event_id = enqueue(INVOICE_GENERATED, "inv_1")
    listener = socket.create_server(("127.0.0.1", 0))
    add_endpoint("ep_drip", f"http://127.0.0.1:{listener.getsockname()[1]}/hook", new_secret())

    def drip_the_answer() -> None:
        # Each byte comes well within the per-read timeout; the whole answer takes ~3 s.
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            for byte in b"HTTP/1.1 204 No Content\r\n\r\n":
                try:
                    connection.sendall(bytes([byte]))
                except OSError:
                    return
                time.sleep(0.1)

    server = threading.Thread(target=drip_the_answer, daemon=True)
    server.start()
    try:
        summary = dispatch_webhooks(timeout=0.5)
    finally:
        server.join(timeout=5)
        listener.close()

    assert summary == DispatchSummary(failed=1, pending=1)
    [(_, _, status, latency_ms, error)] = attempts(event_id, "ep_drip")
    assert (status, error) == (None, "timed out after 0.5s")
    assert 400 <= latency_ms < 1500


def test_a_replayed_dead_letter_gets_the_whole_schedule_again(warehouse, httpserver: HTTPServer):
    reset_warehouse()
    event_id = enqueue(INVOICE_GENERATED, "inv_1")
    add_endpoint("ep_1", httpserver.url_for("/hook"), new_secret())
    httpserver.expect_request("/hook", method="POST").respond_with_data("", status=500)
    now = _now()
    for _ in range(8):
        dispatch_webhooks(now=now)
        now = delivery(event_id, "ep_1")[2]
    assert delivery(event_id, "ep_1")[:2] == ("dead_lettered", 8)

    replayed_at = now + timedelta(days=1)
    replay = replay_event(event_id, now=replayed_at)
    assert replay.endpoint_ids == ("ep_1",)
    assert delivery(event_id, "ep_1") == ("pending", 8, replayed_at, None, None)
    after_replay = dispatch_webhooks(now=replayed_at)

    assert after_replay == DispatchSummary(failed=1, pending=1)
    status, attempt_count, next_attempt_at, _, _ = delivery(event_id, "ep_1")
    assert (status, attempt_count) == ("pending", 9)
    assert_retry_at(next_attempt_at, replayed_at, timedelta(seconds=5))
    assert [no for no, *_ in attempts(event_id, "ep_1")] == list(range(1, 10))
    assert {request.headers["webhook-id"] for request, _ in httpserver.log} == {event_id}
