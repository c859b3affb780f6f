"""Credit grants (SPEC §6): applied at issue, soonest-expiring first, never given twice.

A grant can pay an invoice in its currency whose period ends inside the grant's life
(`granted_at < period_end < expires_at`, or no expiry). The grants, the application's and those
issuing makes, and their amounts in minor units come from dbt's int_credit_grants__unioned, a
view, so it also holds the grants written in the issuing transaction; balances come from the
ledger (billing.credit_applications), so what a grant has given stays given across runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter

GRANT_BALANCES = """
with given as (

    select grant_id, sum(amount_minor)::bigint as amount_minor
    from billing.credit_applications
    group by grant_id

)

select
    grants.grant_id,
    grants.customer_id,
    grants.currency,
    grants.granted_at,
    grants.expires_at,
    grants.amount_minor - coalesce(given.amount_minor, 0) as balance_minor
from billing_intermediate.int_credit_grants__unioned as grants
left join given using (grant_id)
where {condition}
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
        self.grants = sorted(grants, key=attrgetter("spending_order"))

    @classmethod
    def load(cls, connection, customer_ids: list[str]) -> CreditBalances:
        return cls(_balances(connection, "grants.customer_id = any(%s)", customer_ids))

    def add(self, connection, grant_id: str) -> None:
        """Take in a grant made while issuing (a carried credit), for the invoices issued after it."""
        new = _balances(connection, "grants.grant_id = %s", grant_id)
        self.grants = sorted([*self.grants, *new], key=attrgetter("spending_order"))

    def spend_on(self, invoice: dict, due: int) -> list[tuple[str, int]]:
        """Take credits for the invoice up to `due` (its amount including tax, SPEC §12 step 5);
        returns (grant_id, amount_minor) taken."""
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


def _balances(connection, condition: str, value) -> list[Grant]:
    rows = connection.execute(GRANT_BALANCES.format(condition=condition), (value,)).fetchall()
    return [Grant(*row) for row in rows]
