"""Outgoing webhooks (SPEC §8): an outbox written with each state change, a dispatcher that
delivers it signed per Standard Webhooks with retries, and a verifying receiver for demos and tests.
"""

from billing.webhooks.dispatch import MAX_ATTEMPTS, RETRY_DELAYS, DispatchSummary, dispatch_webhooks
from billing.webhooks.outbox import EVENT_TYPES, UnknownEventType, enqueue_event, event_id_for
from billing.webhooks.receiver import WebhookReceiver

__all__ = [
    "EVENT_TYPES",
    "MAX_ATTEMPTS",
    "RETRY_DELAYS",
    "DispatchSummary",
    "UnknownEventType",
    "WebhookReceiver",
    "dispatch_webhooks",
    "enqueue_event",
    "event_id_for",
]
