"""Credit grants (SPEC §6): applied at issue, soonest-expiring first, never given twice.

A grant can pay an invoice in its currency whose period ends inside the grant's life
(`granted_at < period_end < expires_at`, or no expiry). Balances come from the ledger
(billing.credit_applications), so what a grant has given stays given across runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

GRANT_BALANCES = """
select
    grants.grant_id,
    grants.customer_id,
    upper(grants.currency) as currency,
    grants.granted_at,
    grants.expires_at,
    (
        round(grants.amount * power(10::numeric, currencies.minor_unit))
        - coalesce(sum(applications.amount_minor), 0)
    )::bigint as balance_minor
from raw.credit_grants as grants
inner join billing_staging.currencies on upper(grants.currency) = currencies.currency
left join billing.credit_applications as applications on grants.grant_id = applications.grant_id
where grants.customer_id = any(%(customer_ids)s)
group by grants.grant_id, currencies.minor_unit
"""


@dataclass
class Grant:
    grant_id: str
    customer_id: str
    currency: str
    granted_at: datetime
    expires_at: datetime | None
    balance_minor: int

    def can_pay(self, invoice: dict) -> bool:
        return (
            self.balance_minor > 0
            and self.customer_id == invoice["customer_id"]
            and self.currency == invoice["currency"]
            and self.granted_at < invoice["period_end"]
            and (self.expires_at is None or invoice["period_end"] < self.expires_at)
        )

    @property
    def spending_order(self) -> tuple:
        # soonest-expiring first (no expiry last), then granted_at, then grant_id
        return (self.expires_at is None, self.expires_at or self.granted_at, self.granted_at, self.grant_id)


class CreditBalances:
    """The open balances of some customers' grants, spent invoice by invoice in issue order."""

    def __init__(self, grants: list[Grant]):
        self.grants = sorted(grants, key=lambda grant: grant.spending_order)

    @classmethod
    def load(cls, connection, customer_ids: list[str]) -> "CreditBalances":
        rows = connection.execute(GRANT_BALANCES, {"customer_ids": customer_ids}).fetchall()
        return cls([Grant(*row) for row in rows])

    def spend_on(self, invoice: dict) -> list[tuple[str, int]]:
        """Take credits for the invoice up to its subtotal; returns (grant_id, amount_minor) taken."""
        due = invoice["subtotal_minor"]
        taken = []
        for grant in self.grants:
            if due == 0:
                break
            if grant.can_pay(invoice):
                amount = min(grant.balance_minor, due)
                grant.balance_minor -= amount
                due -= amount
                taken.append((grant.grant_id, amount))
        return taken
