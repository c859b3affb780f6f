"""One delivery attempt: sign the body, POST it, and say what happened. No database here.

Later checks (SSRF guard on the URL, honouring Retry-After) belong in `send_webhook`, so the
dispatcher's bookkeeping does not change when they arrive.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone

import httpx

from billing.webhooks.sign import InvalidSecret, signed_headers

USER_AGENT = "warehouse-billing-webhooks/1"
HTTP_GONE = 410


@dataclass(frozen=True)
class AttemptOutcome:
    """What one POST to an endpoint returned: a status code, or an error, and how long it took."""

    response_status: int | None
    latency_ms: int
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.response_status is not None and 200 <= self.response_status < 300

    @property
    def endpoint_gone(self) -> bool:
        return self.response_status == HTTP_GONE


def send_webhook(client: httpx.Client, *, url: str, secret: str, event_id: str, body: str) -> AttemptOutcome:
    """POST `body` to `url`, signed with `secret`; never raises for network or endpoint failures."""
    # NOTE: signed with the wall clock, not the dispatcher's `now`: receivers reject timestamps
    # more than a few minutes from their own clock.
    signed_at = datetime.now(timezone.utc)
    try:
        headers = signed_headers(secret, msg_id=event_id, body=body, signed_at=signed_at)
    except InvalidSecret as error:
        return AttemptOutcome(None, 0, str(error))
    headers["user-agent"] = USER_AGENT

    started = time.monotonic()
    try:
        response = client.post(url, content=body.encode(), headers=headers)
    except httpx.TimeoutException:
        return AttemptOutcome(None, _elapsed_ms(started), f"timed out after {client.timeout.read}s")
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        return AttemptOutcome(None, _elapsed_ms(started), _describe(error, secret))
    latency_ms = _elapsed_ms(started)
    if 200 <= response.status_code < 300:
        return AttemptOutcome(response.status_code, latency_ms)
    return AttemptOutcome(response.status_code, latency_ms, f"HTTP {response.status_code}")


def _elapsed_ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _describe(error: Exception, secret: str) -> str:
    text = f"{type(error).__name__}: {error}"
    return text.replace(secret, "[redacted]") if secret else text
