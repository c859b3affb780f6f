"""Minor units for display: the currency's exponent comes from the dbt seed every amount is rounded with."""

from __future__ import annotations

import csv
from decimal import Decimal
from functools import cache

from billing.settings import CURRENCIES_CSV


@cache
def minor_units() -> dict[str, int]:
    """ISO 4217 code → minor-unit exponent (USD 2, JPY 0, KWD 3)."""
    with CURRENCIES_CSV.open() as handle:
        return {row["currency"]: int(row["minor_unit"]) for row in csv.DictReader(handle)}


def format_minor(amount_minor: int, currency: str) -> str:
    """'USD 1,238.77' from (123877, 'USD')."""
    exponent = minor_units()[currency]
    return f"{currency} {Decimal(amount_minor).scaleb(-exponent):,.{exponent}f}"


def format_price(amount: Decimal, currency: str) -> str:
    """'USD 0.001', 'USD 99.00', 'JPY 0.5' from an unrounded major-unit price: every digit it has, at
    least the currency's minor ones."""
    digits = max(minor_units()[currency], -Decimal(amount).normalize().as_tuple().exponent)
    return f"{currency} {Decimal(amount):,.{digits}f}"
