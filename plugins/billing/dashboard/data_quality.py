"""Data quality: the events billing could not use, why, and the duplicates dedupe dropped."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from billing.dashboard.data import frame

REJECTS_BY_REASON = """
select reject_reason, count(*) as events
from billing_marts.fct_rejected_usage_events
group by reject_reason
order by events desc, reject_reason
"""
REJECTS_BY_DAY = """
select date_trunc('day', ingested_at) as ingested_on, reject_reason, count(*) as events
from billing_marts.fct_rejected_usage_events
group by 1, 2
order by 1, 2
"""
DUPLICATES = """
select count(*) as duplicates, count(*) filter (where is_conflicting) as conflicting
from billing_marts.fct_usage_event_duplicates
"""
CONFLICTING = """
select reference, customer_id, event_name, value, occurred_at, ingested_at, winner_ingested_at,
    winner_payload::text as winner_payload
from billing_marts.fct_usage_event_duplicates
where is_conflicting
order by ingested_at, reference
"""


def render() -> None:
    st.title("Data quality")
    _rejects()
    _duplicates()


def _rejects() -> None:
    by_reason = frame(REJECTS_BY_REASON)
    st.header("Rejected events")
    st.caption("Deduped events billing cannot use, by their first reject reason (SPEC §2;"
               " billing_marts.fct_rejected_usage_events).")
    st.metric("Rejected events", f"{by_reason['events'].sum():,}")
    if by_reason.empty:
        return
    reasons, chart = st.columns([1, 2])
    reasons.table(by_reason.rename(columns={"reject_reason": "reason"}), hide_index=True)
    by_day = frame(REJECTS_BY_DAY)
    chart.bar_chart(by_day, x="ingested_on", y="events", color="reject_reason", x_label="ingested (UTC day)")


def _duplicates() -> None:
    counts = frame(DUPLICATES).iloc[0]
    st.header("Duplicates")
    st.caption("Rows dropped because an earlier row had the same reference; conflicting ones differ from"
               " the billed winner (billing_marts.fct_usage_event_duplicates).")
    dropped, conflicting = st.columns(2)
    dropped.metric("Duplicates dropped", f"{counts['duplicates']:,}")
    conflicting.metric("Conflicting duplicates", f"{counts['conflicting']:,}")
    rows = frame(CONFLICTING)
    if not rows.empty:
        st.table(pd.DataFrame(rows), hide_index=True)
