"""Revenue: MRR and its movements, recognised revenue by service month, plan, meter and customer.
One currency at a time: amounts are never converted (SPEC §11)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from billing.dashboard.data import frame, major, money, month, percent

# Every currency with revenue or MRR, the one with the most revenue first: the page opens on it.
CURRENCIES = """
select currency
from (
    select currency, revenue_minor from billing_marts.fct_revenue
    union all
    select currency, 0 from billing_marts.fct_mrr_movements
) as amounts
group by currency
order by sum(revenue_minor) desc, currency
"""
MRR_MOVEMENTS = """
select month, opening_mrr_minor, new_mrr_minor, reactivation_mrr_minor, expansion_mrr_minor,
    contraction_mrr_minor, churn_mrr_minor, closing_mrr_minor
from billing_marts.fct_mrr_movements
where currency = %s
order by month
"""
SUBSCRIPTION_METRICS = """
select month, customers, churned_customers, logo_churn_rate, mrr_minor, arpa_minor, ltv_minor
from billing_marts.fct_subscription_metrics_monthly
where currency = %s
order by month
"""
REVENUE_BY = """
select {column} as {name}, sum(revenue_minor) as revenue_minor
from billing_marts.fct_revenue
where currency = %s
group by 1
order by {order}
"""
MOVEMENTS = ["new", "reactivation", "expansion", "contraction", "churn"]
# (title, what to group fct_revenue by, its column name): the top ten of each
BREAKDOWNS = [
    ("By plan", "coalesce(plan_id, '(plan removed)')", "plan"),
    ("By meter", "coalesce(event_name, '(base fee, adjustments)')", "meter"),
    ("Top customers", "coalesce(customer_name, customer_id)", "customer"),
]


def render() -> None:
    st.title("Revenue")
    currencies = frame(CURRENCIES)["currency"].tolist()
    if not currencies:
        st.info("No revenue and no MRR yet: no invoice issued, no subscription with a base fee.")
        return
    currency = st.selectbox("Currency (amounts are never converted)", currencies, key="currency",
                            bind="query-params")
    _mrr(currency)
    _revenue(currency)


def _mrr(currency: str) -> None:
    st.header("Monthly recurring revenue")
    st.caption("Base fees in force at each month's end plus the usage of the period starting in it (SPEC §11;"
               " billing_marts.fct_mrr_movements, fct_subscription_metrics_monthly).")
    movements = frame(MRR_MOVEMENTS, currency)
    metrics = frame(SUBSCRIPTION_METRICS, currency)
    if movements.empty:
        return
    latest = metrics.iloc[-1]
    latest_month = f"{latest['month']:%B %Y}"
    columns = st.columns(4)
    columns[0].metric(f"MRR, {latest_month}", money(latest["mrr_minor"], currency))
    columns[1].metric(f"Customers, {latest_month}", f"{latest['customers']:,}")
    columns[2].metric(f"ARPA, {latest_month}", money(latest["arpa_minor"], currency))
    columns[3].metric(f"Logo churn, {latest_month}", percent(latest["logo_churn_rate"]))
    bridge = pd.DataFrame({"month": movements["month"].map(month)})
    for movement in MOVEMENTS:
        sign = -1 if movement in ("contraction", "churn") else 1
        bridge[movement] = [sign * major(amount, currency) for amount in movements[f"{movement}_mrr_minor"]]
    st.bar_chart(bridge.melt("month", var_name="movement", value_name=currency), x="month", y=currency,
                 color="movement", x_label="month")
    st.table(
        pd.DataFrame({
            "month": movements["month"].map(month),
            **{name: [money(amount, currency) for amount in movements[f"{name}_mrr_minor"]]
               for name in ["opening", *MOVEMENTS, "closing"]},
        }),
        hide_index=True,
    )


def _revenue(currency: str) -> None:
    st.header("Recognised revenue")
    st.caption("Issued invoices' lines, void invoices excluded, by service month"
               " (SPEC §11; billing_marts.fct_revenue).")
    by_month = frame(REVENUE_BY.format(column="service_month", name="service_month", order="1"), currency)
    st.bar_chart(
        by_month.assign(month=by_month["service_month"].map(month),
                        revenue=[major(amount, currency) for amount in by_month["revenue_minor"]]),
        x="month", y="revenue", x_label="service month", y_label=currency,
    )
    st.table(_money_table(by_month.assign(service_month=by_month["service_month"].map(month)), "service month",
                          currency), hide_index=True)
    for column, (title, field, name) in zip(st.columns(3), BREAKDOWNS, strict=True):
        rows = frame(REVENUE_BY.format(column=field, name=name, order="2 desc, 1 limit 10"), currency)
        column.subheader(title)
        column.bar_chart(rows.assign(revenue=[major(amount, currency) for amount in rows["revenue_minor"]]),
                         x=name, y="revenue", horizontal=True, y_label=currency, sort="-revenue")
        column.table(_money_table(rows, name, currency), hide_index=True)


def _money_table(rows: pd.DataFrame, label: str, currency: str) -> pd.DataFrame:
    first = rows.columns[0]
    return pd.DataFrame({label: rows[first], "revenue": [money(amount, currency) for amount in rows["revenue_minor"]]})
