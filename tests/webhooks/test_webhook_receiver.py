"""The demo/test receiver: verifies with the standardwebhooks library, 204 or 401, per endpoint."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest
from billing.webhooks import WebhookReceiver
from billing.webhooks.sign import signed_headers
from webhook_test_support import new_secret


def _post(url: str, secret: str, *, msg_id: str = "msg_1", payload: dict | None = None) -> httpx.Response:
    body = json.dumps(payload or {"type": "billing.invoice.generated", "timestamp": "t", "data": {}})
    headers = signed_headers(secret, msg_id=msg_id, body=body, signed_at=datetime.now(UTC))
    return httpx.post(url, content=body, headers=headers)


def test_valid_signature_is_accepted_and_kept():
    secret = new_secret()
    payload = {"type": "billing.charge.failed", "timestamp": "2025-01-31T00:00:00Z", "data": {"invoice_id": "inv_1"}}

    with WebhookReceiver(secret) as receiver:
        response = _post(receiver.url, secret, msg_id="msg_abc", payload=payload)

    assert response.status_code == 204
    assert receiver.accepted == [("msg_abc", payload)]
    assert receiver.rejected == 0


def test_wrong_signature_or_missing_headers_are_rejected():
    with WebhookReceiver(new_secret()) as receiver:
        wrong_secret = _post(receiver.url, new_secret())
        unsigned = httpx.post(receiver.url, content=b"{}", headers={"content-type": "application/json"})

    assert (wrong_secret.status_code, unsigned.status_code) == (401, 401)
    assert receiver.accepted == []
    assert receiver.rejected == 2


def test_each_named_endpoint_checks_its_own_secret():
    secrets = {"a": new_secret(), "b": new_secret()}

    with WebhookReceiver(secrets) as receiver:
        own = _post(receiver.url_for("a"), secrets["a"], msg_id="msg_a")
        other_secret = _post(receiver.url_for("a"), secrets["b"], msg_id="msg_b")
        unknown = _post(receiver.url + "c", secrets["a"])

    assert (own.status_code, other_secret.status_code, unknown.status_code) == (204, 401, 404)
    assert [msg_id for msg_id, _ in receiver.accepted_by_endpoint["a"]] == ["msg_a"]
    assert receiver.accepted_by_endpoint["b"] == []
    assert receiver.rejected == 1


def test_server_stops_on_exit():
    secret = new_secret()
    with WebhookReceiver(secret) as receiver:
        url = receiver.url

    with pytest.raises(httpx.ConnectError):
        _post(url, secret)
