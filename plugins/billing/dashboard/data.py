"""The pages' one way to the warehouse: a query as the dashboard's analyst login, as a DataFrame."""

from __future__ import annotations

import os
from decimal import Decimal

import pandas as pd
import psycopg
import streamlit as st

from billing.dashboard import URL_ENV
from billing.money import format_minor, minor_units

# NOTE: a minute: the marts are views over the system of record, or tables each run rebuilds.
REFRESH_SECONDS = 60


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def frame(query: str, *params) -> pd.DataFrame:
    """Rows of `query` (read-only transaction, UTC) with the column names as the header."""
    options = "-c default_transaction_read_only=on -c timezone=UTC"
    with psycopg.connect(os.environ[URL_ENV], options=options) as connection:
        cursor = connection.execute(query, params)
        return pd.DataFrame(cursor.fetchall(), columns=[column.name for column in cursor.description])


def money(amount_minor: int | None, currency: str) -> str:
    """'USD 1,238.77': the display of every amount on the pages; a dash for none (an ARPA without
    customers)."""
    if amount_minor is None or pd.isna(amount_minor):
        return "–"
    return format_minor(int(amount_minor), currency)


def major(amount_minor: int, currency: str) -> float:
    """An amount in major units as a float, for chart axes only (never for a figure shown as text)."""
    return float(Decimal(int(amount_minor)).scaleb(-minor_units()[currency]))


def number(value, places: int | None = None) -> str:
    """A quantity as written: 12,000 or 0.5, without trailing zeros (or rounded to `places`); blank
    for none."""
    if value is None or pd.isna(value):
        return ""
    value = Decimal(value) if places is None else round(Decimal(value), places)
    value = value.normalize()
    return f"{value:,f}" if value != value.to_integral() else f"{value:,.0f}"


def percent(fraction) -> str:
    """0.25 → '25.0 %'; blank when there is no rate (nothing to divide by)."""
    if fraction is None or pd.isna(fraction):
        return "–"
    return f"{float(fraction) * 100:.1f} %"


def month(day) -> str:
    """'2026-06' for the first day of a month (a service month, an MRR month)."""
    return f"{day:%Y-%m}"
