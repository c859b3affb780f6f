"""Customer: what a SaaS shows its own customer. The current period's usage per meter against its
included units and the projected amount, its invoices, and the usage of every period with what
its invoice billed."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from billing.dashboard.data import frame, money, month, number

CUSTOMERS = """
select customer_id from billing_marts.fct_usage_history
union
select customer_id from billing_marts.fct_invoices
order by customer_id
"""
CURRENT_PERIOD = """
select * from billing_marts.customer_usage_current_period
where customer_id = %s
order by subscription_id, event_name
"""
INVOICES = """
select invoice_number, service_month, period_start, period_end, currency, total_minor, status,
    invoice_date, due_at, paid_at, amount_remaining_minor, days_past_due
from billing_marts.fct_invoices
where customer_id = %s
order by issued_at desc, invoice_number desc
"""
USAGE_HISTORY = """
select period_start, period_end, event_name, aggregation, quantity, count_events, is_closed,
    invoice_number, currency, billed_quantity, billed_amount_minor
from billing_marts.fct_usage_history
where customer_id = %s
order by period_start desc, event_name
"""


def render() -> None:
    st.title("Customer")
    customers = frame(CUSTOMERS)["customer_id"].tolist()
    if not customers:
        st.info("No usage and no invoice yet.")
        return
    customer = st.selectbox("Customer", customers, key="customer", bind="query-params")
    _current_period(customer)
    _invoices(customer)
    _usage_history(customer)


def _current_period(customer: str) -> None:
    charges = frame(CURRENT_PERIOD, customer)
    st.header("Current period")
    if charges.empty:
        st.info("No subscription of this customer is in a period as of the last pipeline run.")
        return
    first = charges.iloc[0]
    currency = first["currency"]
    st.caption(
        f"{first['subscription_id']} · plan {first['plan_id']} · {first['period_start']:%Y-%m-%d %H:%M} → "
        f"{first['period_end']:%Y-%m-%d %H:%M} UTC · as of {first['as_of']:%Y-%m-%d %H:%M} UTC "
        "(billing_marts.customer_usage_current_period)"
    )
    so_far, projected = st.columns(2)
    so_far.metric("Usage charges so far", money(charges["amount_minor"].sum(), currency))
    projected.metric("Projected usage charges for the period", money(charges["projected_amount_minor"].sum(), currency))
    st.table(
        pd.DataFrame({
            "meter": charges["display_name"],
            "used": charges["quantity"].map(number),
            "included": charges["included_units"].map(number),
            "included left": charges["included_units_left"].map(number),
            "so far": [money(amount, currency) for amount in charges["amount_minor"]],
            "projected": [money(amount, currency) for amount in charges["projected_amount_minor"]],
        }),
        hide_index=True,
    )
    for charge in charges.itertuples():
        if charge.included_units:
            used = min(float(charge.quantity / charge.included_units), 1.0)
            st.progress(used, text=f"{charge.display_name}: {number(charge.quantity)} of"
                                   f" {number(charge.included_units)} included units used")


def _invoices(customer: str) -> None:
    invoices = frame(INVOICES, customer)
    st.header("Invoices")
    st.caption("Issued invoices, newest first (billing_marts.fct_invoices).")
    if invoices.empty:
        st.info("No invoice issued yet.")
        return
    st.table(
        pd.DataFrame({
            "invoice": invoices["invoice_number"],
            "service month": invoices["service_month"].map(month),
            "period (UTC)": [f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M}" for start, end in
                             zip(invoices["period_start"], invoices["period_end"], strict=True)],
            "total": [money(amount, currency) for amount, currency in
                      zip(invoices["total_minor"], invoices["currency"], strict=True)],
            "status": invoices["status"],
            "invoice date": invoices["invoice_date"].map(str),
            "due (UTC)": invoices["due_at"].map(lambda moment: f"{moment:%Y-%m-%d %H:%M}"),
            "still owed": [money(amount, currency) for amount, currency in
                           zip(invoices["amount_remaining_minor"], invoices["currency"], strict=True)],
            "days past due": invoices["days_past_due"],
        }),
        hide_index=True,
    )


def _usage_history(customer: str) -> None:
    usage = frame(USAGE_HISTORY, customer)
    st.header("Usage by period")
    st.caption("Every meter the customer sent, charged or not, and what the period's invoice billed"
               " (billing_marts.fct_usage_history).")
    meters = st.columns(max(usage["event_name"].nunique(), 1))
    for column, (meter, periods) in zip(meters, usage.groupby("event_name"), strict=False):
        column.subheader(meter)
        column.bar_chart(
            periods.assign(period=periods["period_start"].dt.strftime("%Y-%m-%d %H:%M"),
                           quantity=periods["quantity"].astype(float)),
            x="period", y="quantity", x_label="period start (UTC)",
        )
    st.table(
        pd.DataFrame({
            "period (UTC)": [f"{start:%Y-%m-%d} → {end:%Y-%m-%d}" for start, end in
                             zip(usage["period_start"], usage["period_end"], strict=True)],
            "meter": usage["event_name"],
            "aggregation": usage["aggregation"],
            "quantity": usage["quantity"].map(number),
            "events": usage["count_events"].map(number),
            "closed": usage["is_closed"].map({True: "yes", False: "no"}),
            "invoice": usage["invoice_number"].fillna(""),
            "billed": [_billed(amount, currency) for amount, currency in
                       zip(usage["billed_amount_minor"], usage["currency"], strict=True)],
        }),
        hide_index=True,
    )


def _billed(amount_minor, currency) -> str:
    """The invoice line's amount; blank when not invoiced yet or the plan does not charge the meter."""
    return "" if amount_minor is None or pd.isna(amount_minor) else money(amount_minor, currency)
