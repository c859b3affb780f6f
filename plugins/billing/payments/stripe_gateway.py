"""The Stripe gateway: each charge attempt is one off-session PaymentIntent, created and confirmed at once;
each refund one Refund of the charge's PaymentIntent.

Configured from the environment: `BILLING_STRIPE_API_KEY` (required), `BILLING_STRIPE_API_BASE`
(default: Stripe's API) and `BILLING_STRIPE_TIMEOUT` (seconds, default 30). The usage sync to
Stripe's meters (billing.stripe_sync) talks to the same account through `stripe_client`.
"""

from __future__ import annotations

import os

import stripe

from billing.payments.gateway import ChargeOutcome, ChargeRequest, OutcomeUnknown, RefundOutcome, RefundRequest

API_KEY_ENV = "BILLING_STRIPE_API_KEY"
API_BASE_ENV = "BILLING_STRIPE_API_BASE"
TIMEOUT_ENV = "BILLING_STRIPE_TIMEOUT"
DEFAULT_TIMEOUT_SECONDS = 30.0


def refused_key_line(error: BaseException) -> str | None:
    """What stopped a command, in one line, when Stripe refused the API key (the calls raise it rather
    than record an outcome); None for anything else."""
    if isinstance(error, stripe.AuthenticationError | stripe.PermissionError):
        return (f"Stripe refused the API key in {API_KEY_ENV} ({error.user_message or error}): fix it and run"
                " the command again; what was recorded before the call stays pending and is sent then")
    return None


class StripeGateway:
    def __init__(
        self,
        api_key: str,
        *,
        api_base: str = stripe.DEFAULT_API_BASE,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_network_retries: int = 0,
    ):
        self._client = stripe_client(
            api_key, api_base=api_base, timeout=timeout, max_network_retries=max_network_retries
        )

    @classmethod
    def from_environment(cls) -> StripeGateway:
        return cls(**stripe_settings())

    def charge(self, request: ChargeRequest) -> ChargeOutcome:
        """Charge the payment method; a declined or invalid charge fails, an unanswered one raises OutcomeUnknown.

        Authentication and permission errors propagate: nothing was charged, and the attempt stays
        pending until the configuration is fixed instead of counting as a failed charge.
        """
        try:
            intent = self._client.v1.payment_intents.create(
                {
                    "amount": request.amount_minor,
                    "currency": request.currency.lower(),
                    "payment_method": request.payment_method_id,
                    "confirm": True,
                    "off_session": True,
                    "metadata": {
                        "invoice_id": request.invoice_id,
                        "attempt_no": str(request.attempt_no),
                        "idempotency_key": request.idempotency_key,
                    },
                },
                {"idempotency_key": request.idempotency_key},
            )
        except (stripe.CardError, stripe.InvalidRequestError) as error:
            details = error.json_body["error"]  # the response's own JSON, a plain dict
            return ChargeOutcome(
                succeeded=False,
                gateway_charge_id=(details.get("payment_intent") or {}).get("id"),
                failure_code=_failure_code(details),
            )
        except (stripe.AuthenticationError, stripe.PermissionError):
            raise
        except stripe.StripeError as error:
            # Timeouts, lost connections, 5xx, 409 (same key still in flight), rate limits: Stripe may
            # have charged, and re-sending the same key returns whatever it did.
            raise _unknown(error) from error
        if intent.status == "processing":
            intent = self._current(intent)
        if intent.status == "succeeded":
            return ChargeOutcome(succeeded=True, gateway_charge_id=intent.id)
        if intent.status == "processing":
            raise OutcomeUnknown(f"stripe: payment intent {intent.id} is still processing")
        last_error = intent.to_dict().get("last_payment_error") or {}
        return ChargeOutcome(
            succeeded=False, gateway_charge_id=intent.id, failure_code=_failure_code(last_error) or intent.status
        )

    def refund(self, request: RefundRequest) -> RefundOutcome:
        """Refund part or all of a paid charge; an invalid refund fails, an unanswered one raises OutcomeUnknown.

        Stripe's `pending` (accepted, the money on its way) counts as succeeded: a later failure
        reaches Stripe's own dashboard and webhooks, not this run.
        """
        try:
            refund = self._client.v1.refunds.create(
                {
                    "payment_intent": request.gateway_charge_id,
                    "amount": request.amount_minor,
                    "metadata": {"credit_note_id": request.credit_note_id, "idempotency_key": request.idempotency_key},
                },
                {"idempotency_key": request.idempotency_key},
            )
        except stripe.InvalidRequestError as error:
            return RefundOutcome(succeeded=False, failure_code=_failure_code(error.json_body["error"]))
        except (stripe.AuthenticationError, stripe.PermissionError):
            raise
        except stripe.StripeError as error:
            raise _unknown(error) from error
        if refund.status in ("succeeded", "pending"):
            return RefundOutcome(succeeded=True, gateway_refund_id=refund.id)
        return RefundOutcome(
            succeeded=False, gateway_refund_id=refund.id,
            failure_code=refund.to_dict().get("failure_reason") or refund.status,
        )

    def _current(self, intent: stripe.PaymentIntent) -> stripe.PaymentIntent:
        """The intent as it is now: a re-sent key replays the first response, which may be stale."""
        try:
            return self._client.v1.payment_intents.retrieve(intent.id)
        except stripe.StripeError as error:
            raise _unknown(error) from error


def stripe_settings() -> dict:
    """The Stripe account's settings from the environment: `api_key`, `api_base`, `timeout`."""
    api_key = os.environ.get(API_KEY_ENV)
    if not api_key:
        raise ValueError(f"talking to Stripe needs an API key in {API_KEY_ENV}")
    return {
        "api_key": api_key,
        "api_base": os.environ.get(API_BASE_ENV) or stripe.DEFAULT_API_BASE,
        "timeout": float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT_SECONDS),
    }


def stripe_client(
    api_key: str, *, api_base: str = stripe.DEFAULT_API_BASE, timeout: float = DEFAULT_TIMEOUT_SECONDS,
    max_network_retries: int = 0,
) -> stripe.StripeClient:
    # NOTE: no retries in the SDK by default: a pending call is re-sent with the same key or identifier
    # by the next run, and in-call retries would multiply the timeout for every unanswered call.
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base},
        max_network_retries=max_network_retries,
        http_client=stripe.RequestsClient(timeout=timeout),
    )


def _unknown(error: stripe.StripeError) -> OutcomeUnknown:
    return OutcomeUnknown(f"stripe {type(error).__name__}: {' '.join(str(error).split())}")


def _failure_code(details: dict) -> str | None:
    return details.get("decline_code") or details.get("code") or details.get("type")
