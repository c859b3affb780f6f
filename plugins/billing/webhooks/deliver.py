"""One delivery attempt: sign the body, POST it, and say what happened. No database here.

The client comes from `transport.webhook_client`, which refuses non-public addresses (the SSRF
guard); a refusal is an outcome like any failure, with its reason as the error. `Retry-After` on a
429 or 503 is read here; what to do with it is the dispatcher's decision.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx

from billing.webhooks.guard import RefusedAddress
from billing.webhooks.sign import InvalidSecret, signed_headers
from billing.webhooks.transport import attempt_deadline

logger = logging.getLogger(__name__)

USER_AGENT = "warehouse-billing-webhooks/1"
HTTP_GONE = 410
THROTTLING_STATUSES = frozenset({429, 503})
# NOTE: enough to read the usual short answer, so the connection can be reused; a larger body
# is not read (the connection is closed instead).
MAX_RESPONSE_BYTES = 64 * 1024
_MAX_RETRY_AFTER_SECONDS = 10**7


@dataclass(frozen=True)
class AttemptOutcome:
    """What one POST to an endpoint returned: a status code, or an error, and how long it took.

    `retry_after` is the delay a 429 or 503 asked for (`Retry-After`, seconds or HTTP-date);
    `refused` says the SSRF guard stopped the attempt before any connection.
    """

    response_status: int | None
    latency_ms: int
    error: str | None = None
    retry_after: timedelta | None = None
    refused: bool = False

    @property
    def succeeded(self) -> bool:
        return self.response_status is not None and 200 <= self.response_status < 300

    @property
    def endpoint_gone(self) -> bool:
        return self.response_status == HTTP_GONE

    @property
    def throttled(self) -> bool:
        return self.response_status in THROTTLING_STATUSES


def send_webhook(
    client: httpx.Client,
    *,
    url: str,
    secret: str,
    event_id: str,
    body: str,
    previous_secret: str | None = None,
    timeout: float | None = None,
) -> AttemptOutcome:
    """POST `body` to `url`, signed with `secret` (and `previous_secret`, during a rotation's
    overlap); never raises for network or endpoint failures.

    `timeout` (default: the client's) bounds the whole attempt, not each socket operation.
    """
    timeout = client.timeout.read if timeout is None else timeout
    try:
        headers = _headers(secret, previous_secret, event_id=event_id, body=body)
    except InvalidSecret as error:
        return AttemptOutcome(None, 0, str(error))

    started = time.monotonic()
    try:
        with attempt_deadline(timeout), client.stream("POST", url, content=body.encode(), headers=headers) as response:
            _drain(response)
    except RefusedAddress as refusal:
        return AttemptOutcome(None, _elapsed_ms(started), str(refusal), refused=True)
    except httpx.TimeoutException:
        return AttemptOutcome(None, _elapsed_ms(started), f"timed out after {timeout}s")
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        return AttemptOutcome(None, _elapsed_ms(started), _describe(error, secret, previous_secret))
    latency_ms = _elapsed_ms(started)
    status = response.status_code
    if 200 <= status < 300:
        return AttemptOutcome(status, latency_ms)
    retry_after = _retry_after(response) if status in THROTTLING_STATUSES else None
    error = f"HTTP {status}"
    if retry_after is not None:
        error += f" (Retry-After: {round(retry_after.total_seconds())} s)"
    return AttemptOutcome(status, latency_ms, error, retry_after=retry_after)


def _headers(secret: str, previous_secret: str | None, *, event_id: str, body: str) -> dict[str, str]:
    # NOTE: signed with the wall clock, not the dispatcher's `now`: receivers reject timestamps
    # more than a few minutes from their own clock.
    signed_at = datetime.now(UTC)
    headers = signed_headers(secret, msg_id=event_id, body=body, signed_at=signed_at)
    if previous_secret:
        try:
            headers = signed_headers(
                secret, msg_id=event_id, body=body, signed_at=signed_at, previous_secret=previous_secret
            )
        except InvalidSecret as error:
            # NOTE: the current secret still signs; failing every delivery over the old one
            # would hurt the receivers that already moved to the new secret.
            logger.warning("webhook %s: %s; signed with the current secret only", event_id, error)
    headers["user-agent"] = USER_AGENT
    return headers


def _drain(response: httpx.Response) -> None:
    """Read a short answer to its end (so the connection can be reused), at most MAX_RESPONSE_BYTES."""
    read = 0
    try:
        for chunk in response.iter_raw():
            read += len(chunk)
            if read > MAX_RESPONSE_BYTES:
                return
    except httpx.HTTPError:
        pass  # NOTE: the status is what counts; a body cut short only costs the connection.


def _retry_after(response: httpx.Response) -> timedelta | None:
    """The delay `Retry-After` asks for, as delta-seconds or an HTTP-date; None if absent or invalid."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return timedelta(seconds=min(int(value), _MAX_RETRY_AFTER_SECONDS))
    try:
        retry_at = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if retry_at.tzinfo is None:
        retry_at = retry_at.replace(tzinfo=UTC)
    return max(retry_at - datetime.now(UTC), timedelta(0))


def _elapsed_ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _describe(error: Exception, *secrets: str | None) -> str:
    text = f"{type(error).__name__}: {error}"
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text
