"""Standard Webhooks signing: the body we send and the headers that prove it came from us.

Verification is the `standardwebhooks` library's `Webhook(secret).verify(body, headers)`, as a
receiver would do it (see `receiver.py`); `signed_headers` also signs payloads for tests.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from datetime import UTC, datetime

from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError


class InvalidSecret(ValueError):
    """The endpoint's secret is not a usable `whsec_` key. The message never contains it."""

    code = "invalid_endpoint_secret"


def signed_headers(
    secret: str, *, msg_id: str, body: str, signed_at: datetime, previous_secret: str | None = None
) -> dict[str, str]:
    """The headers of a signed webhook request: id, timestamp, signature and content type.

    With a `previous_secret` (a rotation's overlap) the request carries two signatures, the
    current one first, space-separated as Standard Webhooks allows, so a receiver verifies it
    with either secret.
    """
    # NOTE: the library reads the timestamp as UTC whatever its tzinfo says, so convert first.
    signed_at = signed_at.astimezone(UTC)
    signatures = [_webhook(secret).sign(msg_id, signed_at, body)]
    if previous_secret:
        signatures.append(_webhook(previous_secret, which="previous").sign(msg_id, signed_at, body))
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(signed_at.timestamp())),
        "webhook-signature": " ".join(signatures),
        "content-type": "application/json",
    }


def new_secret() -> str:
    """A fresh endpoint secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def webhook_body(*, event_type: str, timestamp: str, data: dict) -> str:
    """The request body: Standard Webhooks' `{"type", "timestamp", "data"}` envelope."""
    return json.dumps({"type": event_type, "timestamp": timestamp, "data": data}, separators=(",", ":"))


def _webhook(secret: str, *, which: str = "") -> Webhook:
    try:
        return Webhook(secret)
    except (binascii.Error, EmptyWebhookSecretError, RuntimeError):
        # NOTE: `from None` drops the library's exception, which could echo part of the secret.
        name = f"endpoint {which} secret" if which else "endpoint secret"
        raise InvalidSecret(f"{name} is not a valid base64 whsec_ key") from None
