"""The sandbox gateway (the default): SPEC §7's test payment methods, with a ledger in the warehouse.

It behaves like a real gateway's test mode: the outcome depends on the payment method, and a
request with an idempotency key it has seen returns the first outcome without charging (or
refunding) again. A refund of one of its succeeded charges succeeds; of a charge it does not know,
it fails `charge_not_found`.
"""

from __future__ import annotations

import os
import time

from billing.idempotency import idempotency_key
from billing.payments.gateway import ChargeOutcome, ChargeRequest, OutcomeUnknown, RefundOutcome, RefundRequest
from billing.warehouse import connect

DECLINES = {
    "pm_card_chargeDeclined": "card_declined",
    "pm_card_chargeDeclinedInsufficientFunds": "insufficient_funds",
}
# Beyond SPEC §7: charges the card but loses the first response, as a gateway timeout does; the
# first response to a refund of such a charge is lost too.
TIMEOUT_ONCE = "pm_card_timeoutOnce"
# A real gateway's round trip, simulated (bench/): milliseconds slept by every call, default 0.
LATENCY_ENV = "BILLING_SANDBOX_LATENCY_MS"


class SandboxGateway:
    def charge(self, request: ChargeRequest) -> ChargeOutcome:
        time.sleep(float(os.environ.get(LATENCY_ENV) or 0) / 1000)
        outcome = _decide(request)
        with connect() as connection:
            recorded = connection.execute(
                "insert into billing.sandbox_gateway_charges (idempotency_key, payment_method_id,"
                " amount_minor, currency, succeeded, failure_code, gateway_charge_id)"
                " values (%s, %s, %s, %s, %s, %s, %s) on conflict (idempotency_key) do nothing",
                (request.idempotency_key, request.payment_method_id, request.amount_minor,
                 request.currency, outcome.succeeded, outcome.failure_code, outcome.gateway_charge_id),
            ).rowcount
            if not recorded:  # a key it has seen: the first outcome, charged once
                return ChargeOutcome(*connection.execute(
                    "select succeeded, gateway_charge_id, failure_code"
                    " from billing.sandbox_gateway_charges where idempotency_key = %s",
                    (request.idempotency_key,),
                ).fetchone())
        if request.payment_method_id == TIMEOUT_ONCE:
            raise OutcomeUnknown("sandbox: response lost after charging (pm_card_timeoutOnce)")
        return outcome


    def refund(self, request: RefundRequest) -> RefundOutcome:
        time.sleep(float(os.environ.get(LATENCY_ENV) or 0) / 1000)
        with connect() as connection:
            charge = connection.execute(
                "select payment_method_id from billing.sandbox_gateway_charges"
                " where gateway_charge_id = %s and succeeded", (request.gateway_charge_id,),
            ).fetchone()
            if charge is None:
                return RefundOutcome(succeeded=False, failure_code="charge_not_found")
            recorded = connection.execute(
                "insert into billing.sandbox_gateway_refunds (idempotency_key, gateway_charge_id, amount_minor,"
                " currency, gateway_refund_id) values (%s, %s, %s, %s, %s) on conflict (idempotency_key) do nothing",
                (request.idempotency_key, request.gateway_charge_id, request.amount_minor, request.currency,
                 idempotency_key("sbre", request.idempotency_key)),
            ).rowcount
            [(refund_id,)] = connection.execute(
                "select gateway_refund_id from billing.sandbox_gateway_refunds where idempotency_key = %s",
                (request.idempotency_key,),
            ).fetchall()
        if recorded and charge[0] == TIMEOUT_ONCE:
            raise OutcomeUnknown("sandbox: response lost after refunding (a pm_card_timeoutOnce charge)")
        return RefundOutcome(succeeded=True, gateway_refund_id=refund_id)


def _decide(request: ChargeRequest) -> ChargeOutcome:
    charge_id = idempotency_key("sbch", request.idempotency_key)
    failure = DECLINES.get(request.payment_method_id)
    if request.payment_method_id == "pm_card_declineOnce" and request.attempt_no == 1:
        failure = "card_declined"
    if failure:
        return ChargeOutcome(succeeded=False, gateway_charge_id=charge_id, failure_code=failure)
    return ChargeOutcome(succeeded=True, gateway_charge_id=charge_id)
