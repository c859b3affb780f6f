"""Dispatch against a real warehouse and real HTTP endpoints: signing, retries, 410, dead letters."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta

from billing.webhooks import MAX_ATTEMPTS, RETRY_DELAYS, DispatchSummary, WebhookReceiver, dispatch_webhooks
from conftest import query, reset_warehouse, run_dag
from pytest_httpserver import HTTPServer
from standardwebhooks import Webhook
from webhook_test_support import (  # noqa: F401 (allow_local_receivers: an autouse fixture)
    CHARGE_FAILED,
    INVOICE_GENERATED,
    add_endpoint,
    allow_local_receivers,
    assert_retry_at,
    attempts,
    closed_port_url,
    delivery,
    endpoint_enabled,
    enqueue,
    new_secret,
)
from werkzeug import Response


def _now() -> datetime:
    return datetime.now(UTC)


def test_event_is_delivered_signed_and_its_attempt_recorded(warehouse):
    reset_warehouse()
    secret = new_secret()
    event_id = enqueue(INVOICE_GENERATED, "inv_1", {"invoice_id": "inv_1", "total_minor": 1250})
    (created_at,) = query("select created_at from billing.webhook_events")[0]
    now = _now()

    with WebhookReceiver(secret) as receiver:
        add_endpoint("ep_1", receiver.url, secret)
        summary = dispatch_webhooks(now=now)

    assert summary == DispatchSummary(delivered=1, failed=0, dead_lettered=0, pending=0)
    assert receiver.rejected == 0
    assert receiver.accepted == [
        (
            event_id,
            {
                "type": INVOICE_GENERATED,
                "timestamp": created_at.isoformat().replace("+00:00", "Z"),
                "data": {"invoice_id": "inv_1", "total_minor": 1250},
            },
        )
    ]
    assert delivery(event_id, "ep_1") == ("delivered", 1, now, now, None)
    [(attempt_no, attempted_at, status, latency_ms, error)] = attempts(event_id, "ep_1")
    assert (attempt_no, attempted_at, status, error) == (1, now, 204, None)
    assert 0 <= latency_ms < 5000


def test_request_carries_standard_webhooks_headers_that_verify(warehouse, httpserver: HTTPServer):
    reset_warehouse()
    secret = new_secret()
    event_id = enqueue(INVOICE_GENERATED, "inv_1", {"invoice_id": "inv_1"})
    add_endpoint("ep_1", httpserver.url_for("/hook"), secret)
    httpserver.expect_request("/hook", method="POST").respond_with_data("", status=200)

    dispatch_webhooks()

    [(request, _response)] = httpserver.log
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == event_id
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    payload = Webhook(secret).verify(request.get_data(), dict(request.headers))
    assert payload["type"] == INVOICE_GENERATED
    assert payload["data"] == {"invoice_id": "inv_1"}
    assert Webhook(secret).sign(
        event_id,
        datetime.fromtimestamp(int(request.headers["webhook-timestamp"]), UTC),
        request.get_data(as_text=True),
    ) == request.headers["webhook-signature"]


def test_delivered_event_is_not_sent_again(warehouse):
    reset_warehouse()
    secret = new_secret()
    enqueue(INVOICE_GENERATED, "inv_1")
    enqueue(INVOICE_GENERATED, "inv_1")
    now = _now()

    with WebhookReceiver(secret) as receiver:
        add_endpoint("ep_1", receiver.url, secret)
        first = dispatch_webhooks(now=now)
        second = dispatch_webhooks(now=now + timedelta(days=1))

    assert (first.delivered, second.delivered) == (1, 0)
    assert len(receiver.accepted) == 1


def test_server_error_is_retried_after_five_seconds(warehouse, httpserver: HTTPServer):
    reset_warehouse()
    secret = new_secret()
    event_id = enqueue(INVOICE_GENERATED, "inv_1")
    add_endpoint("ep_1", httpserver.url_for("/hook"), secret)
    httpserver.expect_ordered_request("/hook", method="POST").respond_with_data("oops", status=500)
    httpserver.expect_ordered_request("/hook", method="POST").respond_with_data("", status=204)
    now = _now()

    failed = dispatch_webhooks(now=now)

    assert failed == DispatchSummary(delivered=0, failed=1, dead_lettered=0, pending=1)
    status, attempt_count, next_attempt_at, delivered_at, last_error = delivery(event_id, "ep_1")
    assert (status, attempt_count, delivered_at, last_error) == ("pending", 1, None, "HTTP 500")
    assert_retry_at(next_attempt_at, now, timedelta(seconds=5))
    assert [(no, at, status, error) for no, at, status, _, error in attempts(event_id, "ep_1")] == [
        (1, now, 500, "HTTP 500")
    ]

    not_yet_due = dispatch_webhooks(now=now + timedelta(seconds=4.4))
    assert not_yet_due == DispatchSummary(pending=1)
    assert len(httpserver.log) == 1

    retried = dispatch_webhooks(now=now + timedelta(seconds=6))
    dispatch_webhooks(now=now + timedelta(days=2))

    assert retried == DispatchSummary(delivered=1, pending=0)
    assert delivery(event_id, "ep_1")[:2] == ("delivered", 2)
    assert [(no, status) for no, _, status, _, _ in attempts(event_id, "ep_1")] == [(1, 500), (2, 204)]
    assert len(httpserver.log) == 2
    httpserver.check_assertions()


def test_gone_disables_the_endpoint_and_stops_its_deliveries(warehouse, httpserver: HTTPServer):
    reset_warehouse()
    secret = new_secret()
    event_id = enqueue(INVOICE_GENERATED, "inv_1")
    add_endpoint("ep_gone", httpserver.url_for("/hook"), secret)
    httpserver.expect_request("/hook", method="POST").respond_with_data("", status=410)
    now = _now()

    summary = dispatch_webhooks(now=now)
    later_event_id = enqueue(INVOICE_GENERATED, "inv_2")
    later = dispatch_webhooks(now=now + timedelta(days=3))

    assert summary == DispatchSummary(failed=1, pending=1, endpoints_disabled=1)
    assert later == DispatchSummary(pending=1)
    assert endpoint_enabled("ep_gone") is False
    assert [(no, status, error) for no, _, status, _, error in attempts(event_id, "ep_gone")] == [(1, 410, "HTTP 410")]
    assert query("select event_id from billing.webhook_deliveries where event_id = %s", later_event_id) == []
    assert len(httpserver.log) == 1


def test_delivery_is_dead_lettered_after_eight_failed_attempts(warehouse, httpserver: HTTPServer):
    reset_warehouse()
    secret = new_secret()
    event_id = enqueue(CHARGE_FAILED, "ikey_1", {"invoice_id": "inv_1"})
    add_endpoint("ep_1", httpserver.url_for("/hook"), secret)
    httpserver.expect_request("/hook", method="POST").respond_with_data("", status=503)
    now = _now()

    summaries = []
    for _ in range(MAX_ATTEMPTS):
        summaries.append(dispatch_webhooks(now=now))
        now = delivery(event_id, "ep_1")[2]
    after_dead_letter = dispatch_webhooks(now=now + timedelta(days=30))

    assert MAX_ATTEMPTS == 8
    assert summaries[:-1] == [DispatchSummary(failed=1, pending=1)] * 7
    assert summaries[-1] == DispatchSummary(dead_lettered=1, pending=0)
    assert after_dead_letter == DispatchSummary()
    status, attempt_count, _, delivered_at, last_error = delivery(event_id, "ep_1")
    assert (status, attempt_count, delivered_at, last_error) == ("dead_lettered", 8, None, "HTTP 503")
    attempted_at = [at for _, at, _, _, _ in attempts(event_id, "ep_1")]
    assert list(RETRY_DELAYS) == [
        timedelta(seconds=5),
        timedelta(minutes=5),
        timedelta(minutes=30),
        timedelta(hours=2),
        timedelta(hours=5),
        timedelta(hours=10),
        timedelta(hours=10),
    ]
    for earlier, later, delay in zip(attempted_at, attempted_at[1:], RETRY_DELAYS, strict=False):
        assert_retry_at(later, earlier, delay)
    gaps = [later - earlier for earlier, later in zip(attempted_at, attempted_at[1:], strict=False)]
    assert gaps != list(RETRY_DELAYS), "jitter moves each retry a little"
    assert len(httpserver.log) == 8


def test_endpoints_receive_only_the_types_they_subscribe_to(warehouse):
    reset_warehouse()
    secrets = {name: new_secret() for name in ("invoices", "charges", "everything", "disabled")}
    event_id = enqueue(INVOICE_GENERATED, "inv_1")

    with WebhookReceiver(secrets) as receiver:
        add_endpoint("invoices", receiver.url_for("invoices"), secrets["invoices"], event_types=[INVOICE_GENERATED])
        add_endpoint(
            "charges",
            receiver.url_for("charges"),
            secrets["charges"],
            event_types=["billing.charge.succeeded", CHARGE_FAILED],
        )
        add_endpoint("everything", receiver.url_for("everything"), secrets["everything"])
        add_endpoint("disabled", receiver.url_for("disabled"), secrets["disabled"], enabled=False)
        summary = dispatch_webhooks()

    assert summary == DispatchSummary(delivered=2)
    assert [ids for ids, _ in receiver.accepted_by_endpoint["invoices"]] == [event_id]
    assert [ids for ids, _ in receiver.accepted_by_endpoint["everything"]] == [event_id]
    assert receiver.accepted_by_endpoint["charges"] == []
    assert receiver.accepted_by_endpoint["disabled"] == []
    assert query("select endpoint_id from billing.webhook_deliveries order by 1") == [
        ("everything",),
        ("invoices",),
    ]


def test_endpoint_added_later_receives_only_newer_events(warehouse):
    reset_warehouse()
    secrets = {"first": new_secret(), "second": new_secret()}
    old_event = enqueue(INVOICE_GENERATED, "inv_1")

    with WebhookReceiver(secrets) as receiver:
        add_endpoint("first", receiver.url_for("first"), secrets["first"])
        dispatch_webhooks()
        add_endpoint("second", receiver.url_for("second"), secrets["second"])
        new_event = enqueue(INVOICE_GENERATED, "inv_2")
        dispatch_webhooks()

    assert [ids for ids, _ in receiver.accepted_by_endpoint["first"]] == [old_event, new_event]
    assert [ids for ids, _ in receiver.accepted_by_endpoint["second"]] == [new_event]


def test_signature_rejected_by_the_receiver_is_retried(warehouse):
    reset_warehouse()
    event_id = enqueue(INVOICE_GENERATED, "inv_1")
    now = _now()

    with WebhookReceiver(new_secret()) as receiver:
        add_endpoint("ep_1", receiver.url, new_secret())
        summary = dispatch_webhooks(now=now)

    assert summary == DispatchSummary(failed=1, pending=1)
    assert receiver.rejected == 1
    status, attempt_count, next_attempt_at, _, last_error = delivery(event_id, "ep_1")
    assert (status, attempt_count, last_error) == ("pending", 1, "HTTP 401")
    assert_retry_at(next_attempt_at, now, timedelta(seconds=5))


def test_unreachable_endpoint_is_retried_with_the_connection_error(warehouse):
    reset_warehouse()
    event_id = enqueue(INVOICE_GENERATED, "inv_1")
    add_endpoint("ep_1", closed_port_url(), new_secret())
    now = _now()

    summary = dispatch_webhooks(now=now)

    assert summary == DispatchSummary(failed=1, pending=1)
    [(_, _, status, _, error)] = attempts(event_id, "ep_1")
    assert status is None
    assert error.startswith("ConnectError: ")
    assert delivery(event_id, "ep_1")[:2] == ("pending", 1)
    assert_retry_at(delivery(event_id, "ep_1")[2], now, timedelta(seconds=5))


def test_slow_endpoint_times_out_and_is_retried(warehouse, httpserver: HTTPServer):
    reset_warehouse()
    event_id = enqueue(INVOICE_GENERATED, "inv_1")
    add_endpoint("ep_1", httpserver.url_for("/hook"), new_secret())

    def slow(_request):
        time.sleep(1.0)
        return Response(status=204)

    httpserver.expect_request("/hook", method="POST").respond_with_handler(slow)

    summary = dispatch_webhooks(timeout=0.2)

    assert summary == DispatchSummary(failed=1, pending=1)
    [(_, _, status, latency_ms, error)] = attempts(event_id, "ep_1")
    assert (status, error) == (None, "timed out after 0.2s")
    assert 150 <= latency_ms < 1000
    _wait_for_requests_served(httpserver, 1)


def _wait_for_requests_served(httpserver: HTTPServer, count: int) -> None:
    # NOTE: the server is shared by the session; a request still being served would land in
    # the next test's log.
    deadline = time.monotonic() + 5
    while len(httpserver.log) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def test_secret_never_appears_in_errors_or_logs(warehouse, caplog):
    reset_warehouse()
    unusable_secret = "whsec_!!!"
    event_id = enqueue(INVOICE_GENERATED, "inv_1")
    add_endpoint("ep_bad_secret", closed_port_url(), unusable_secret)
    good_secret = new_secret()
    add_endpoint("ep_unreachable", closed_port_url(), good_secret)

    with caplog.at_level(logging.DEBUG):
        summary = dispatch_webhooks()

    assert summary == DispatchSummary(failed=2, pending=2)
    [(_, _, _, _, error)] = attempts(event_id, "ep_bad_secret")
    assert error == "endpoint secret is not a valid base64 whsec_ key"
    recorded = json.dumps(query("select * from billing.webhook_delivery_attempts"), default=str)
    recorded += json.dumps(query("select * from billing.webhook_deliveries"), default=str)
    for secret in (unusable_secret, good_secret, good_secret.removeprefix("whsec_")):
        assert secret not in recorded
        assert secret not in caplog.text
    assert "ep_unreachable" in caplog.text


def test_concurrent_dispatchers_send_each_delivery_once(warehouse, httpserver: HTTPServer):
    reset_warehouse()
    secret = new_secret()
    event_ids = {enqueue(INVOICE_GENERATED, f"inv_{n}") for n in range(6)}
    add_endpoint("ep_1", httpserver.url_for("/hook"), secret)

    def slow_ok(_request):
        time.sleep(0.05)
        return Response(status=204)

    httpserver.expect_request("/hook", method="POST").respond_with_handler(slow_ok)
    summaries: list[DispatchSummary] = []
    dispatchers = [threading.Thread(target=lambda: summaries.append(dispatch_webhooks())) for _ in range(3)]
    for dispatcher in dispatchers:
        dispatcher.start()
    for dispatcher in dispatchers:
        dispatcher.join()

    sent_ids = [request.headers["webhook-id"] for request, _ in httpserver.log]
    assert sorted(sent_ids) == sorted(event_ids)
    assert sum(summary.delivered for summary in summaries) == 6
    assert query(
        "select count(*), count(distinct event_id) from billing.webhook_delivery_attempts where response_status = 204"
    ) == [(6, 6)]


def test_the_webhook_dispatch_dag_delivers_through_airflow(warehouse):
    reset_warehouse()
    secrets = {"a": new_secret(), "b": new_secret()}
    event_id = enqueue(INVOICE_GENERATED, "inv_1", {"invoice_id": "inv_1"})

    with WebhookReceiver(secrets) as receiver:
        for name, secret in secrets.items():
            add_endpoint(f"ep_{name}", receiver.url_for(name), secret)
        outcome = run_dag("webhook_dispatch", "2026-06-01T00:05:00Z")

    assert outcome.succeeded
    assert receiver.rejected == 0
    for name in secrets:
        assert [(ids, payload["data"]) for ids, payload in receiver.accepted_by_endpoint[name]] == [
            (event_id, {"invoice_id": "inv_1"})
        ]
        assert delivery(event_id, f"ep_{name}")[:2] == ("delivered", 1)
