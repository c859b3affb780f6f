"""What charging and refunding need from a payment gateway, whichever one is configured."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ChargeRequest:
    idempotency_key: str
    invoice_id: str
    attempt_no: int
    payment_method_id: str
    amount_minor: int
    currency: str


@dataclass(frozen=True)
class ChargeOutcome:
    succeeded: bool
    gateway_charge_id: str | None = None
    failure_code: str | None = None


@dataclass(frozen=True)
class RefundRequest:
    """Return `amount_minor` of the paid charge `gateway_charge_id` (SPEC §13: a `refund` credit note)."""

    idempotency_key: str
    credit_note_id: str
    gateway_charge_id: str
    amount_minor: int
    currency: str


@dataclass(frozen=True)
class RefundOutcome:
    succeeded: bool
    gateway_refund_id: str | None = None
    failure_code: str | None = None


class OutcomeUnknown(Exception):
    """The gateway did not answer (timeout, connection lost): the charge or refund may or may not have
    happened.

    The attempt (or refund) stays pending and is re-sent with the same idempotency key, so the
    gateway answers with what it did the first time instead of moving the money again.
    """


class PaymentGateway(Protocol):
    def charge(self, request: ChargeRequest) -> ChargeOutcome: ...

    def refund(self, request: RefundRequest) -> RefundOutcome: ...


def configured_gateway() -> PaymentGateway:
    """The gateway named by `BILLING_PAYMENT_GATEWAY` (default: the sandbox)."""
    name = os.environ.get("BILLING_PAYMENT_GATEWAY", "sandbox")
    if name == "sandbox":
        from billing.payments.sandbox import SandboxGateway

        return SandboxGateway()
    if name == "stripe":
        from billing.payments.stripe_gateway import StripeGateway

        return StripeGateway.from_environment()
    raise ValueError(f"unknown payment gateway '{name}' (BILLING_PAYMENT_GATEWAY); expected: sandbox, stripe")
