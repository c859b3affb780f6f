"""Receivables: what customers owe by age, the invoices in dunning, and how charges succeed."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from billing.dashboard.data import frame, major, money, month, percent

BUCKETS = ["current", "1-30", "31-60", "61-90", "91+", "written_off"]
AGING_NOW = """
select currency, aging_bucket, count(*) as invoices, sum(amount_remaining_minor) as amount_minor
from billing_marts.fct_receivables_aging
where is_current
group by 1, 2
"""
AGING_BY_MONTH = """
select as_of_date, currency, aging_bucket, sum(amount_remaining_minor) as amount_minor
from billing_marts.fct_receivables_aging
where not is_current and aging_bucket != 'written_off'
group by 1, 2, 3
order by 1
"""
DUNNING = """
select invoice_number, coalesce(customer_name, customer_id) as customer, status, currency,
    amount_remaining_minor, days_past_due, attempts_made, attempts_left, last_failure_code,
    next_attempt_from, gives_up_at
from billing_marts.fct_dunning
order by next_attempt_from nulls last, invoice_number
"""
PAYMENT_SUCCESS = """
select attempt_month, currency, count_attempts, count_succeeded, count_failed, success_rate,
    first_attempt_success_rate
from billing_marts.fct_payment_success_monthly
order by attempt_month, currency
"""


def render() -> None:
    st.title("Receivables")
    _aging()
    _dunning()
    _payment_success()


def _aging() -> None:
    st.header("Aging")
    st.caption("Open and payment_failed invoices by days past due, today; written-off (uncollectible) apart"
               " (SPEC §11; billing_marts.fct_receivables_aging).")
    now = frame(AGING_NOW)
    if now.empty:
        st.info("Nothing is owed.")
        return
    for currency, rows in now.groupby("currency"):
        owed = rows[rows["aging_bucket"] != "written_off"]
        st.metric(f"Owed in {currency}", money(owed["amount_minor"].sum(), currency))
        by_bucket = rows.set_index("aging_bucket").reindex(BUCKETS)
        st.table(pd.DataFrame({
            "bucket": BUCKETS,
            "invoices": [f"{count:,.0f}" if pd.notna(count) else "0" for count in by_bucket["invoices"]],
            "owed": [money(amount if pd.notna(amount) else 0, currency) for amount in by_bucket["amount_minor"]],
        }), hide_index=True)
    history = frame(AGING_BY_MONTH)
    for currency, rows in history.groupby("currency"):
        st.bar_chart(
            rows.assign(month_end=rows["as_of_date"].map(lambda day: f"{day:%Y-%m-%d}"),
                        owed=[major(amount, currency) for amount in rows["amount_minor"]]),
            x="month_end", y="owed", color="aging_bucket", x_label=f"owed at month end ({currency})", y_label=currency,
        )


def _dunning() -> None:
    st.header("Dunning queue")
    st.caption("Invoices in collection after a failed charge: attempts made and left, the next retry and when"
               " they are given up (SPEC §7; billing_marts.fct_dunning).")
    queue = frame(DUNNING)
    st.metric("Invoices in dunning", f"{len(queue):,}")
    if queue.empty:
        return
    st.table(pd.DataFrame({
        "invoice": queue["invoice_number"],
        "customer": queue["customer"],
        "status": queue["status"],
        "owed": [money(amount, currency) for amount, currency in
                 zip(queue["amount_remaining_minor"], queue["currency"], strict=True)],
        "days past due": queue["days_past_due"],
        "attempts made": queue["attempts_made"],
        "attempts left": queue["attempts_left"],
        "last decline": queue["last_failure_code"],
        "next attempt from (UTC)": queue["next_attempt_from"].map(_moment),
        "given up at (UTC)": queue["gives_up_at"].map(_moment),
    }), hide_index=True)


def _payment_success() -> None:
    st.header("Payment success")
    st.caption("Succeeded ÷ all charge attempts, and on first attempts, by attempt month"
               " (SPEC §11; billing_marts.fct_payment_success_monthly).")
    rates = frame(PAYMENT_SUCCESS)
    if rates.empty:
        return
    months = rates["attempt_month"].map(month)
    st.line_chart(
        pd.DataFrame({"month": months, "currency": rates["currency"],
                      "success rate": rates["success_rate"].astype(float)}),
        x="month", y="success rate", color="currency",
    )
    st.table(pd.DataFrame({
        "month": months,
        "currency": rates["currency"],
        "attempts": rates["count_attempts"],
        "succeeded": rates["count_succeeded"],
        "failed": rates["count_failed"],
        "success rate": rates["success_rate"].map(percent),
        "first-attempt success rate": rates["first_attempt_success_rate"].map(percent),
    }), hide_index=True)


def _moment(value) -> str:
    return "" if value is None or pd.isna(value) else f"{value:%Y-%m-%d %H:%M}"
