"""An endpoint's deliveries are claimed and committed in batches: order, failures and stops across a
batch's boundaries are what they are one delivery at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import billing.webhooks.dispatch as dispatch
from billing.webhooks import DispatchSummary, WebhookReceiver, dispatch_webhooks
from conftest import reset_warehouse
from pytest_httpserver import HTTPServer
from webhook_test_support import (  # noqa: F401 (allow_local_receivers: an autouse fixture)
    INVOICE_GENERATED,
    add_endpoint,
    allow_local_receivers,
    attempts,
    delivery,
    endpoint_enabled,
    enqueue,
    new_secret,
)
from werkzeug import Request, Response


def test_events_arrive_in_order_across_batches_and_a_failed_one_waits_for_its_retry(
    warehouse, httpserver: HTTPServer, monkeypatch
):
    reset_warehouse()
    monkeypatch.setattr(dispatch, "CLAIM_BATCH", 3)
    event_ids = [enqueue(INVOICE_GENERATED, f"inv_{n}") for n in range(1, 9)]
    failing = event_ids[1]
    add_endpoint("ep_1", httpserver.url_for("/hook"), new_secret())

    def answer(request: Request) -> Response:
        return Response(status=500 if request.headers["webhook-id"] == failing else 204)

    httpserver.expect_request("/hook", method="POST").respond_with_handler(answer)
    now = datetime.now(UTC)

    first = dispatch_webhooks(now=now)
    sent_first = [request.headers["webhook-id"] for request, _ in httpserver.log]
    retried = dispatch_webhooks(now=now + timedelta(seconds=6))

    assert first == DispatchSummary(delivered=7, failed=1, pending=1)
    assert sent_first == event_ids
    assert retried == DispatchSummary(failed=1, pending=1)
    assert [request.headers["webhook-id"] for request, _ in httpserver.log] == [*event_ids, failing]
    assert delivery(failing, "ep_1")[:2] == ("pending", 2)
    assert [len(attempts(event_id, "ep_1")) for event_id in event_ids] == [1, 2, 1, 1, 1, 1, 1, 1]


def test_a_batch_past_its_time_commits_and_the_next_claims_the_rest_first(warehouse, monkeypatch):
    reset_warehouse()
    monkeypatch.setattr(dispatch, "BATCH_SECONDS", 0.0)  # every batch ends after its first attempt
    secret = new_secret()
    event_ids = [enqueue(INVOICE_GENERATED, f"inv_{n}") for n in range(1, 5)]

    with WebhookReceiver(secret) as receiver:
        add_endpoint("ep_1", receiver.url, secret)
        summary = dispatch_webhooks()

    assert summary == DispatchSummary(delivered=4)
    assert [event_id for event_id, _ in receiver.accepted] == event_ids
    assert [delivery(event_id, "ep_1")[:2] for event_id in event_ids] == [("delivered", 1)] * 4


def test_gone_mid_batch_holds_the_rest_of_the_batch_unattempted(warehouse, httpserver: HTTPServer):
    reset_warehouse()
    event_ids = [enqueue(INVOICE_GENERATED, f"inv_{n}") for n in range(1, 4)]
    add_endpoint("ep_gone", httpserver.url_for("/hook"), new_secret())
    httpserver.expect_request("/hook", method="POST").respond_with_data("", status=410)

    summary = dispatch_webhooks()

    assert summary == DispatchSummary(failed=1, pending=3, endpoints_disabled=1)
    assert [request.headers["webhook-id"] for request, _ in httpserver.log] == event_ids[:1]
    assert endpoint_enabled("ep_gone") is False
    assert [delivery(event_id, "ep_gone")[:2] for event_id in event_ids[1:]] == [("pending", 0)] * 2
