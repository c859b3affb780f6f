"""The local Stripe-compatible API (stripe_server.FakeStripe) with Stripe Billing's meters, as Stripe
documents them:

- `POST /v1/billing/meters`, `GET /v1/billing/meters`: meters by `event_name`;
- `POST /v1/billing/meter_events`: `payload[stripe_customer_id]` and a whole-number `payload[value]`
  (negative allowed, to correct earlier usage); `timestamp` within the past 35 days and at most
  5 minutes ahead; an `identifier` already received is refused ("An event already exists with
  identifier …"), so one identifier is one event;
- `POST /v1/billing/meter_event_adjustments`: `type=cancel`, `cancel[identifier]`, refused once 24 h
  have passed since Stripe received the event; a repeated Idempotency-Key replays the first answer;
- `GET /v1/billing/meters/{id}/event_summaries`: the sum of a customer's uncancelled events in
  [start_time, end_time), both on minute boundaries (on the window's with `value_grouping_window`).

Its clock (`now`) is the test's to move. `fail_once(identifier)` answers that event's next request
500 without recording it; `lose_answer_once(identifier)` records it and answers too late for the
client (a lost response: the caller cannot know it was recorded).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from stripe_server import FakeStripe

CANCEL_WINDOW = timedelta(hours=24)
PAST_WINDOW = timedelta(days=35)
FUTURE_WINDOW = timedelta(minutes=5)
WINDOW_SECONDS = {"hour": 3600, "day": 86400}


def _invalid(message: str, code: str | None = None) -> tuple[int, dict, float]:
    error = {"type": "invalid_request_error", "message": message, **({"code": code} if code else {})}
    return 400, {"error": error}, 0.0


class FakeStripeMeters(FakeStripe):
    def __init__(self, *, slow_seconds: float = 2.0, now: datetime | None = None):
        super().__init__(slow_seconds=slow_seconds)
        self.now = now or datetime.now(UTC)
        self.meters: dict[str, dict] = {}
        self.meter_events: dict[str, dict] = {}  # by identifier, with `received_at` and `cancelled`
        self._fail_once: set[str] = set()
        self._lose_answer_once: set[str] = set()

    def fail_once(self, identifier: str) -> None:
        self._fail_once.add(identifier)

    def lose_answer_once(self, identifier: str) -> None:
        self._lose_answer_once.add(identifier)

    def create_meter(self, event_name: str, formula: str = "sum") -> dict:
        meter = {"id": "mtr_" + secrets.token_hex(8), "object": "billing.meter", "event_name": event_name,
                 "display_name": event_name, "status": "active", "default_aggregation": {"formula": formula}}
        self.meters[meter["id"]] = meter
        return meter

    def billed(self, customer: str, event_name: str, start: datetime, end: datetime) -> int:
        """What Stripe would bill: the customer's uncancelled events of the meter in [start, end)."""
        return sum(
            int(event["payload"]["value"]) for event in self.meter_events.values()
            if not event["cancelled"] and event["event_name"] == event_name
            and event["payload"]["stripe_customer_id"] == customer
            and start.timestamp() <= event["timestamp"] < end.timestamp()
        )

    def post(self, path: str, form: dict, key: str | None) -> tuple[int, dict, float]:
        with self._lock:
            if path == "/v1/billing/meters":
                formula = form.get("default_aggregation", {}).get("formula", "sum")
                return 200, self.create_meter(form["event_name"], formula), 0.0
            if path == "/v1/billing/meter_events":
                return self._create_meter_event(form)
            if path == "/v1/billing/meter_event_adjustments":
                if key in self._saved:
                    return (*self._saved[key], 0.0)
                status, body, delay = self._cancel(form)
                if status == 200 and key:
                    self._saved[key] = (status, body)
                return status, body, delay
        return super().post(path, form, key)

    def get(self, path: str, query: dict) -> tuple[int, dict]:
        if path == "/v1/billing/meters":
            return 200, {"object": "list", "data": list(self.meters.values()), "has_more": False, "url": path}
        if path.startswith("/v1/billing/meters/") and path.endswith("/event_summaries"):
            return self._event_summaries(path.split("/")[4], query)
        return super().get(path, query)

    def _create_meter_event(self, form: dict) -> tuple[int, dict, float]:
        identifier = form.get("identifier") or "evt_" + secrets.token_hex(8)
        if identifier in self._fail_once:
            self._fail_once.discard(identifier)
            return 500, {"error": {"type": "api_error", "message": "An unknown error occurred."}}, 0.0
        if identifier in self.meter_events:
            return _invalid(f"An event already exists with identifier {identifier}.")
        if form.get("event_name") not in {meter["event_name"] for meter in self.meters.values()}:
            return _invalid(f"No active meter was found for event name {form.get('event_name')}.")
        payload = form.get("payload", {})
        if not payload.get("stripe_customer_id"):
            return _invalid("Missing required payload key stripe_customer_id.")
        try:
            int(payload.get("value", ""))
        except ValueError:
            return _invalid(f"Value must be a whole number, got {payload.get('value')!r}.")
        timestamp = int(form.get("timestamp") or self.now.timestamp())
        if not (self.now - PAST_WINDOW).timestamp() <= timestamp <= (self.now + FUTURE_WINDOW).timestamp():
            return _invalid("Timestamp must be within the past 35 calendar days or up to 5 minutes in the future.")
        event = {"object": "billing.meter_event", "event_name": form["event_name"], "identifier": identifier,
                 "payload": payload, "timestamp": timestamp, "created": int(self.now.timestamp())}
        self.meter_events[identifier] = {**event, "received_at": self.now, "cancelled": False}
        if identifier in self._lose_answer_once:
            self._lose_answer_once.discard(identifier)
            return 200, event, self.slow_seconds
        return 200, event, 0.0

    def _cancel(self, form: dict) -> tuple[int, dict, float]:
        identifier = form.get("cancel", {}).get("identifier")
        if form.get("type") != "cancel" or not identifier:
            return _invalid("The adjustment configuration is invalid for the adjustment type.",
                            "invalid_cancel_configuration")
        event = self.meter_events.get(identifier)
        if event is None or event["event_name"] != form.get("event_name"):
            return _invalid(f"No meter event with identifier {identifier}.", "resource_missing")
        if self.now - event["received_at"] > CANCEL_WINDOW:
            return _invalid("You can only cancel events within 24 hours of Stripe receiving them.")
        event["cancelled"] = True
        return 200, {"object": "billing.meter_event_adjustment", "livemode": False, "status": "pending",
                     "event_name": form["event_name"], "type": "cancel", "cancel": {"identifier": identifier}}, 0.0

    def _event_summaries(self, meter_id: str, query: dict) -> tuple[int, dict]:
        meter = self.meters.get(meter_id)
        if meter is None:
            return 404, {"error": {"type": "invalid_request_error", "code": "resource_missing",
                                   "message": f"No such billing meter: '{meter_id}'"}}
        start, end = int(query["start_time"]), int(query["end_time"])
        alignment = WINDOW_SECONDS.get(query.get("value_grouping_window"), 60)
        if start % alignment or end % alignment:
            return 400, {"error": {"type": "invalid_request_error",
                                   "message": "start_time and end_time must be aligned to the window."}}
        start_at, end_at = datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
        value = self.billed(query["customer"], meter["event_name"], start_at, end_at)
        summary = {"id": "mtrusg_" + secrets.token_hex(8), "object": "billing.meter_event_summary",
                   "aggregated_value": value, "meter": meter_id, "start_time": start, "end_time": end,
                   "livemode": False}
        return 200, {"object": "list", "data": [summary], "has_more": False,
                     "url": f"/v1/billing/meters/{meter_id}/event_summaries"}
