"""Outgoing webhooks (SPEC §8): an outbox written with each state change, a dispatcher that
delivers it signed per Standard Webhooks with retries (concurrently across endpoints, behind an
SSRF guard), secret rotation, replay, and a verifying receiver for demos and tests.
"""

from billing.webhooks.dispatch import (
    MAX_ATTEMPTS,
    MAX_RETRY_AFTER,
    RETRY_DELAYS,
    DispatchSummary,
    dispatch_webhooks,
)
from billing.webhooks.errors import EndpointNotFound, EventNotFound, NothingToReplay
from billing.webhooks.guard import ALLOW_HOSTS_ENV, RefusedAddress
from billing.webhooks.outbox import EVENT_TYPES, UnknownEventType, enqueue_event, event_id_for
from billing.webhooks.receiver import WebhookReceiver
from billing.webhooks.replay import replay_event
from billing.webhooks.rotate import rotate_secret

__all__ = [
    "ALLOW_HOSTS_ENV",
    "EVENT_TYPES",
    "MAX_ATTEMPTS",
    "MAX_RETRY_AFTER",
    "RETRY_DELAYS",
    "DispatchSummary",
    "EndpointNotFound",
    "EventNotFound",
    "NothingToReplay",
    "RefusedAddress",
    "UnknownEventType",
    "WebhookReceiver",
    "dispatch_webhooks",
    "enqueue_event",
    "event_id_for",
    "replay_event",
    "rotate_secret",
]
