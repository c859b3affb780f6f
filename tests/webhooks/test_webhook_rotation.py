"""Secret rotation: both signatures during the overlap, only the new one after; secrets stay out
of logs, errors and the attempt records."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from billing.webhooks import DispatchSummary, EndpointNotFound, dispatch_webhooks, rotate_secret
from conftest import query, reset_warehouse
from pytest_httpserver import HTTPServer
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from webhook_test_support import (  # noqa: F401 (allow_local_receivers: an autouse fixture)
    INVOICE_GENERATED,
    add_endpoint,
    allow_local_receivers,
    enqueue,
    new_secret,
)


def _now() -> datetime:
    return datetime.now(UTC)


def _secrets_of(endpoint_id: str) -> tuple:
    [row] = query(
        "select secret, previous_secret, previous_secret_expires_at from raw.webhook_endpoints where endpoint_id = %s",
        endpoint_id,
    )
    return row


def test_during_the_overlap_both_secrets_verify_and_after_it_only_the_new(warehouse, httpserver: HTTPServer):
    reset_warehouse()
    old_secret = new_secret()
    add_endpoint("ep_1", httpserver.url_for("/hook"), old_secret)
    httpserver.expect_request("/hook", method="POST").respond_with_data("", status=204)
    before = _now()

    rotation = rotate_secret("ep_1", overlap="24h")

    assert rotation.secret.startswith("whsec_") and rotation.secret != old_secret
    assert len(Webhook(rotation.secret)._whsecret) == 32
    assert before + timedelta(hours=24) <= rotation.previous_valid_until <= _now() + timedelta(hours=24)
    assert _secrets_of("ep_1") == (rotation.secret, old_secret, rotation.previous_valid_until)
    assert rotation.secret not in repr(rotation)

    during = enqueue(INVOICE_GENERATED, "inv_1")
    assert dispatch_webhooks() == DispatchSummary(delivered=1)
    after = enqueue(INVOICE_GENERATED, "inv_2")
    assert dispatch_webhooks(now=_now() + timedelta(hours=24, minutes=1)) == DispatchSummary(delivered=1)

    [(in_overlap, _), (after_overlap, _)] = httpserver.log
    assert in_overlap.headers["webhook-id"] == during
    assert len(in_overlap.headers["webhook-signature"].split(" ")) == 2
    for secret in (old_secret, rotation.secret):
        assert Webhook(secret).verify(in_overlap.get_data(), dict(in_overlap.headers))["type"] == INVOICE_GENERATED

    assert after_overlap.headers["webhook-id"] == after
    assert len(after_overlap.headers["webhook-signature"].split(" ")) == 1
    Webhook(rotation.secret).verify(after_overlap.get_data(), dict(after_overlap.headers))
    with pytest.raises(WebhookVerificationError):
        Webhook(old_secret).verify(after_overlap.get_data(), dict(after_overlap.headers))


def test_a_zero_overlap_drops_the_old_secret_at_once(warehouse):
    reset_warehouse()
    add_endpoint("ep_1", "https://hooks.example.com/", new_secret())

    rotation = rotate_secret("ep_1", overlap="0h")

    assert rotation.previous_valid_until is None
    assert _secrets_of("ep_1") == (rotation.secret, None, None)


def test_rotating_again_during_an_overlap_keeps_only_the_last_old_secret(warehouse):
    reset_warehouse()
    first = new_secret()
    add_endpoint("ep_1", "https://hooks.example.com/", first)

    second = rotate_secret("ep_1", overlap="1h")
    third = rotate_secret("ep_1", overlap="2d")

    assert (second.ended_earlier_overlap, third.ended_earlier_overlap) == (False, True)
    assert _secrets_of("ep_1")[:2] == (third.secret, second.secret)


def test_rotating_an_unknown_endpoint_or_with_a_bad_overlap_is_refused(warehouse):
    reset_warehouse()

    with pytest.raises(EndpointNotFound, match="no webhook endpoint 'ep_nope'"):
        rotate_secret("ep_nope")
    add_endpoint("ep_1", "https://hooks.example.com/", new_secret())
    with pytest.raises(ValueError, match="is not a duration"):
        rotate_secret("ep_1", overlap="a while")


def test_secrets_stay_out_of_records_and_logs_during_an_overlap(warehouse, caplog):
    reset_warehouse()
    old_secret = new_secret()
    add_endpoint("ep_1", "http://10.0.0.1/hook", old_secret)
    rotation = rotate_secret("ep_1")
    bad_previous = "whsec_!!!"
    add_endpoint("ep_2", "http://10.0.0.2/hook", new_secret())
    query(
        "update raw.webhook_endpoints set previous_secret = %s where endpoint_id = 'ep_2' returning 1",
        bad_previous,
    )
    enqueue(INVOICE_GENERATED, "inv_1")

    with caplog.at_level(logging.DEBUG):
        summary = dispatch_webhooks()

    assert summary == DispatchSummary(failed=2, pending=2)
    assert "endpoint previous secret is not a valid base64 whsec_ key" in caplog.text
    recorded = json.dumps(query("select * from billing.webhook_delivery_attempts"), default=str)
    recorded += json.dumps(query("select * from billing.webhook_deliveries"), default=str)
    for secret in (old_secret, rotation.secret, bad_previous):
        assert secret.removeprefix("whsec_") not in recorded
        assert secret.removeprefix("whsec_") not in caplog.text
