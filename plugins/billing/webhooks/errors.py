"""The webhook operations' named failures, one code each, for the CLI to report."""

from __future__ import annotations


class WebhookError(LookupError):
    code = "webhook_error"


class EventNotFound(WebhookError):
    code = "event_not_found"


class EndpointNotFound(WebhookError):
    code = "endpoint_not_found"


class NothingToReplay(WebhookError):
    code = "nothing_to_replay"
