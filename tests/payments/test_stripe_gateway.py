"""The Stripe gateway, through the real SDK, against a local Stripe-compatible server: no warehouse needed."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

import pytest
import stripe
from billing.payments.gateway import (
    ChargeOutcome,
    ChargeRequest,
    OutcomeUnknown,
    RefundOutcome,
    RefundRequest,
    configured_gateway,
)
from billing.payments.stripe_gateway import StripeGateway
from stripe_server import API_KEY, FakeStripe


@pytest.fixture
def stripe_api():
    with FakeStripe(slow_seconds=2.0) as api:
        yield api


@pytest.fixture
def gateway(stripe_api: FakeStripe) -> StripeGateway:
    return StripeGateway(API_KEY, api_base=stripe_api.url, timeout=5)


def charge_request(payment_method_id: str = "pm_card_visa", *, key: str = "ch_v1_attempt", **fields) -> ChargeRequest:
    return ChargeRequest(**{
        "idempotency_key": key, "invoice_id": "inv_2026_0001", "attempt_no": 2,
        "payment_method_id": payment_method_id, "amount_minor": 1234, "currency": "EUR", **fields,
    })


def only_intent(stripe_api: FakeStripe) -> dict:
    (intent,) = stripe_api.intents.values()
    return intent


def test_a_charge_is_one_confirmed_off_session_intent_sent_with_the_attempt_key(gateway, stripe_api):
    outcome = gateway.charge(charge_request())

    assert outcome == ChargeOutcome(succeeded=True, gateway_charge_id=only_intent(stripe_api)["id"])
    (seen,) = stripe_api.requests
    assert (seen.method, seen.path) == ("POST", "/v1/payment_intents")
    assert seen.form == {
        "amount": "1234", "currency": "eur", "payment_method": "pm_card_visa", "confirm": "true",
        "off_session": "true",
        "metadata": {"invoice_id": "inv_2026_0001", "attempt_no": "2", "idempotency_key": "ch_v1_attempt"},
    }
    assert seen.headers["Idempotency-Key"] == "ch_v1_attempt"
    assert seen.headers["Authorization"] == f"Bearer {API_KEY}"


def test_a_resent_key_returns_the_first_outcome_without_charging_again(gateway, stripe_api):
    first = gateway.charge(charge_request())
    again = gateway.charge(charge_request())

    assert again == first
    assert len(stripe_api.requests) == 2
    assert stripe_api.charges == {"ch_v1_attempt": 1}


@pytest.mark.parametrize(("payment_method_id", "failure_code"), [
    ("pm_card_chargeDeclined", "generic_decline"),
    ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds"),
])
def test_a_declined_card_fails_with_the_decline_code(gateway, stripe_api, payment_method_id, failure_code):
    outcome = gateway.charge(charge_request(payment_method_id))

    assert outcome == ChargeOutcome(
        succeeded=False, gateway_charge_id=only_intent(stripe_api)["id"], failure_code=failure_code
    )


def test_a_lost_response_is_unknown_and_the_resent_key_returns_the_recorded_charge(stripe_api):
    gateway = StripeGateway(API_KEY, api_base=stripe_api.url, timeout=0.5)

    with pytest.raises(OutcomeUnknown, match="APIConnectionError"):
        gateway.charge(charge_request("pm_test_timeoutOnce"))
    outcome = gateway.charge(charge_request("pm_test_timeoutOnce"))

    assert outcome == ChargeOutcome(succeeded=True, gateway_charge_id=only_intent(stripe_api)["id"])
    assert stripe_api.charges == {"ch_v1_attempt": 1}
    assert [seen.headers["Idempotency-Key"] for seen in stripe_api.requests] == ["ch_v1_attempt"] * 2


def test_an_unreachable_api_is_unknown():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    gateway = StripeGateway(API_KEY, api_base=f"http://127.0.0.1:{port}", timeout=2)

    with pytest.raises(OutcomeUnknown, match="APIConnectionError"):
        gateway.charge(charge_request())


def test_a_stripe_server_error_is_unknown_and_stays_unknown_for_that_key(gateway, stripe_api):
    for _ in range(2):
        with pytest.raises(OutcomeUnknown, match="APIError: .*An unknown error occurred"):
            gateway.charge(charge_request("pm_test_apiError"))

    assert len(stripe_api.requests) == 2
    assert not stripe_api.charges


@pytest.mark.parametrize(("fields", "failure_code"), [
    ({"payment_method_id": "pm_card_unknown"}, "resource_missing"),
    ({"currency": "XXX"}, "invalid_request_error"),  # no code in the error: its type
])
def test_an_invalid_request_fails_with_its_code_and_charges_nothing(gateway, stripe_api, fields, failure_code):
    outcome = gateway.charge(charge_request(**fields))

    assert outcome == ChargeOutcome(succeeded=False, failure_code=failure_code)
    assert not stripe_api.charges


def test_a_processing_intent_is_unknown_until_it_settles(gateway, stripe_api):
    with pytest.raises(OutcomeUnknown, match="still processing"):
        gateway.charge(charge_request("pm_test_processing"))
    intent_id = only_intent(stripe_api)["id"]
    stripe_api.settle(intent_id)

    assert gateway.charge(charge_request("pm_test_processing")) == ChargeOutcome(
        succeeded=True, gateway_charge_id=intent_id
    )
    assert stripe_api.charges == {"ch_v1_attempt": 1}


def test_a_rejected_api_key_is_raised_not_recorded_as_a_failed_charge(stripe_api):
    gateway = StripeGateway("sk_test_revoked", api_base=stripe_api.url, timeout=5)

    with pytest.raises(stripe.AuthenticationError):
        gateway.charge(charge_request())
    assert not stripe_api.charges


def test_one_gateway_serves_concurrent_charges(gateway, stripe_api):
    keys = [f"ch_v1_{number}" for number in range(16)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(lambda key: gateway.charge(charge_request(key=key)), keys))

    assert all(outcome.succeeded for outcome in outcomes)
    assert stripe_api.charges == {key: 1 for key in keys}


def test_the_stripe_gateway_is_configured_from_the_environment(stripe_api, monkeypatch):
    monkeypatch.setenv("BILLING_PAYMENT_GATEWAY", "stripe")
    monkeypatch.setenv("BILLING_STRIPE_API_KEY", API_KEY)
    monkeypatch.setenv("BILLING_STRIPE_API_BASE", stripe_api.url)

    assert configured_gateway().charge(charge_request()).succeeded
    assert stripe_api.charges == {"ch_v1_attempt": 1}


def test_the_stripe_gateway_needs_an_api_key(monkeypatch):
    monkeypatch.setenv("BILLING_PAYMENT_GATEWAY", "stripe")
    monkeypatch.delenv("BILLING_STRIPE_API_KEY", raising=False)

    with pytest.raises(ValueError, match="BILLING_STRIPE_API_KEY"):
        configured_gateway()


def refund_request(gateway_charge_id: str, amount_minor: int = 400, *, key: str = "re_v1_note") -> RefundRequest:
    return RefundRequest(idempotency_key=key, credit_note_id="cn_v1_note", gateway_charge_id=gateway_charge_id,
                         amount_minor=amount_minor, currency="EUR")


def test_a_refund_is_one_refund_of_the_charge_s_intent_sent_with_its_key(gateway, stripe_api):
    charged = gateway.charge(charge_request())
    first = gateway.refund(refund_request(charged.gateway_charge_id))
    again = gateway.refund(refund_request(charged.gateway_charge_id))  # a re-run: Stripe replays the first

    assert first.succeeded and first == again and first.gateway_refund_id.startswith("re_")
    assert stripe_api.refunds == {"re_v1_note": 1}
    seen = stripe_api.requests[-1]
    assert (seen.path, seen.headers["Idempotency-Key"]) == ("/v1/refunds", "re_v1_note")
    assert seen.form == {"payment_intent": charged.gateway_charge_id, "amount": "400",
                         "metadata": {"credit_note_id": "cn_v1_note", "idempotency_key": "re_v1_note"}}


def test_a_lost_refund_answer_is_unknown_and_the_resent_key_refunds_once(stripe_api):
    charged = StripeGateway(API_KEY, api_base=stripe_api.url, timeout=5).charge(charge_request("pm_test_timeoutOnce"))
    gateway = StripeGateway(API_KEY, api_base=stripe_api.url, timeout=0.5)

    with pytest.raises(OutcomeUnknown, match="APIConnectionError"):
        gateway.refund(refund_request(charged.gateway_charge_id))
    assert gateway.refund(refund_request(charged.gateway_charge_id)).succeeded
    assert stripe_api.refunds == {"re_v1_note": 1}


def test_a_refund_beyond_what_was_charged_fails_and_refunds_nothing(gateway, stripe_api):
    charged = gateway.charge(charge_request())

    assert gateway.refund(refund_request(charged.gateway_charge_id, 1235)) == RefundOutcome(
        succeeded=False, failure_code="amount_too_large")
    assert not stripe_api.refunds
