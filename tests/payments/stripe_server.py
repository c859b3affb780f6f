"""A local Stripe-compatible API for the gateway tests: POST /v1/payment_intents, GET /v1/payment_intents/<id>,
POST /v1/refunds.

Like Stripe's v1 idempotency layer, it saves the response of the first request with a given
Idempotency-Key once the charge starts executing and replays it for that key; requests that fail
validation (400) or authentication (401) are not saved. Outcomes depend on the payment method:

- `pm_card_visa` succeeds; `pm_card_chargeDeclined*` is declined with a 402 card_error;
- `pm_test_timeoutOnce` succeeds, but the first response comes `slow_seconds` late;
- `pm_test_apiError` answers 500; `pm_test_processing` stays `processing` until `settle()`;
- any other payment method, or an unknown currency, is a 400 invalid_request_error.

A refund of a succeeded payment intent succeeds up to what is left of its amount (more is a 400
`amount_too_large`, an unknown intent a 400 `resource_missing`); the first response to a refund of a
`pm_test_timeoutOnce` intent comes `slow_seconds` late too.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

API_KEY = "sk_test_local_gateway"
CURRENCIES = {"eur", "usd", "gbp", "jpy"}
SUCCEEDS = {"pm_card_visa": "succeeded", "pm_test_timeoutOnce": "succeeded", "pm_test_processing": "processing"}
DECLINES = {
    "pm_card_chargeDeclined": "generic_decline",
    "pm_card_chargeDeclinedInsufficientFunds": "insufficient_funds",
}
TIMEOUT_ONCE = "pm_test_timeoutOnce"
API_ERROR = "pm_test_apiError"


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]
    form: dict


class FakeStripe:
    def __init__(self, *, slow_seconds: float = 2.0):
        self.slow_seconds = slow_seconds
        self.requests: list[SeenRequest] = []
        self.charges: Counter[str] = Counter()  # payment intents created, per idempotency key
        self.intents: dict[str, dict] = {}
        self.refunds: Counter[str] = Counter()  # refunds created, per idempotency key
        self.refunded: Counter[str] = Counter()  # amount refunded, per payment intent
        self._saved: dict[str, tuple[int, dict]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self._server.server_address
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeStripe:
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()

    def post(self, path: str, form: dict, key: str | None) -> tuple[int, dict, float]:
        """Answer a POST: (HTTP status, body, seconds to wait before answering)."""
        if path == "/v1/refunds":
            return self.create_refund(form, key)
        if path != "/v1/payment_intents":
            return 404, {"error": {"type": "invalid_request_error", "message": "Unrecognized request URL"}}, 0.0
        return self.create_payment_intent(form, key)

    def get(self, path: str, query: dict) -> tuple[int, dict]:
        """Answer a GET: (HTTP status, body)."""
        intent = self.intents.get(path.removeprefix("/v1/payment_intents/"))
        if intent is None:
            return 404, {"error": {"type": "invalid_request_error", "code": "resource_missing",
                                   "message": "No such payment_intent"}}
        return 200, intent

    def settle(self, intent_id: str) -> None:
        self.intents[intent_id]["status"] = "succeeded"

    def create_payment_intent(self, form: dict, key: str | None) -> tuple[int, dict, float]:
        """(HTTP status, body, seconds to wait before answering)."""
        with self._lock:
            if key in self._saved:
                return (*self._saved[key], 0.0)
            invalid = _validation_error(form)
            if invalid:
                return 400, invalid, 0.0
            status, body = self._execute(form, key)
            self._saved[key] = (status, body)
        return status, body, self.slow_seconds if form["payment_method"] == TIMEOUT_ONCE else 0.0

    def create_refund(self, form: dict, key: str | None) -> tuple[int, dict, float]:
        """(HTTP status, body, seconds to wait before answering)."""
        with self._lock:
            if key in self._saved:
                return (*self._saved[key], 0.0)
            intent = self.intents.get(form.get("payment_intent", ""))
            if intent is None or intent["status"] != "succeeded":
                return 400, {"error": {"type": "invalid_request_error", "code": "resource_missing",
                                       "param": "payment_intent", "message": "No such payment_intent"}}, 0.0
            amount = int(form["amount"])
            if amount > intent["amount"] - self.refunded[intent["id"]]:
                return 400, {"error": {"type": "invalid_request_error", "code": "amount_too_large",
                                       "message": "Refund amount is greater than unrefunded amount"}}, 0.0
            refund = {"id": "re_" + secrets.token_hex(12), "object": "refund", "amount": amount,
                      "currency": intent["currency"], "payment_intent": intent["id"], "status": "succeeded",
                      "metadata": form.get("metadata", {})}
            self.refunds[key] += 1
            self.refunded[intent["id"]] += amount
            self._saved[key] = (200, refund)
        return 200, refund, self.slow_seconds if intent["payment_method"] == TIMEOUT_ONCE else 0.0

    def _execute(self, form: dict, key: str | None) -> tuple[int, dict]:
        payment_method = form["payment_method"]
        if payment_method == API_ERROR:
            return 500, {"error": {"type": "api_error", "message": "An unknown error occurred."}}
        intent = {
            "id": "pi_" + secrets.token_hex(12),
            "object": "payment_intent",
            "amount": int(form["amount"]),
            "currency": form["currency"],
            "payment_method": payment_method,
            "metadata": form.get("metadata", {}),
            "status": SUCCEEDS.get(payment_method, "requires_payment_method"),
            "last_payment_error": None,
        }
        self.intents[intent["id"]] = intent
        self.charges[key] += 1
        if payment_method in SUCCEEDS:
            return 200, intent
        error = {"type": "card_error", "code": "card_declined", "decline_code": DECLINES[payment_method],
                 "message": "Your card was declined."}
        intent["last_payment_error"] = error
        return 402, {"error": {**error, "payment_intent": intent}}


def _validation_error(form: dict) -> dict | None:
    if form.get("currency") not in CURRENCIES:
        return {"error": {"type": "invalid_request_error", "param": "currency",
                          "message": f"Invalid currency: {form.get('currency')}."}}
    if form.get("payment_method") not in {*SUCCEEDS, *DECLINES, API_ERROR}:
        return {"error": {"type": "invalid_request_error", "code": "resource_missing", "param": "payment_method",
                          "message": f"No such PaymentMethod: '{form.get('payment_method')}'"}}
    return None


def _parse_form(body: str) -> dict:
    """Stripe's form encoding, one level deep: `metadata[invoice_id]=x` → {"metadata": {"invoice_id": "x"}}."""
    form: dict = {}
    for name, value in parse_qsl(body, keep_blank_values=True):
        if "[" in name:
            outer, inner = name.rstrip("]").split("[", 1)
            form.setdefault(outer, {})[inner] = value
        else:
            form[name] = value
    return form


def _handler_for(stripe: FakeStripe) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            form = _parse_form(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
            if not self._seen_and_authorized(form):
                return
            status, body, delay = stripe.post(self.path, form, self.headers.get("Idempotency-Key"))
            time.sleep(delay)
            self._reply(status, body)

        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            if not self._seen_and_authorized(_parse_form(query)):
                return
            self._reply(*stripe.get(path, _parse_form(query)))

        def _seen_and_authorized(self, form: dict) -> bool:
            stripe.requests.append(SeenRequest(self.command, self.path, dict(self.headers), form))
            if self.headers.get("Authorization") == f"Bearer {API_KEY}":
                return True
            self._reply(401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided."}})
            return False

        def _reply(self, status: int, body: dict) -> None:
            payload = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Request-Id", "req_" + secrets.token_hex(7))
                self.end_headers()
                self.wfile.write(payload)
            except ConnectionError:
                pass  # the client gave up waiting (the timeout tests)

        def log_message(self, format: str, *args) -> None:
            pass

    return Handler
