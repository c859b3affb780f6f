"""Data quality: the events billing could not use and why, the duplicates dedupe dropped, the
gates' verdicts, and how webhook deliveries fare per endpoint."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from billing.dashboard.data import frame, number, percent

UNBILLED_BY_DAY = """
select ingested_date, outcome, reason, count_events
from billing_marts.fct_data_quality_daily
order by ingested_date, outcome, reason
"""
CONFLICTING = """
select reference, customer_id, event_name, value, occurred_at, ingested_at, winner_ingested_at,
    winner_payload::text as winner_payload
from billing_marts.fct_usage_event_duplicates
where is_conflicting
order by ingested_at, reference
"""
GATE_RUNS = """
select run_label, gate, max(checked_at) as checked_at, count(*) as checks,
    count(*) filter (where verdict = 'pass') as passed,
    count(*) filter (where verdict = 'acknowledged') as acknowledged,
    count(*) filter (where verdict = 'fail') as failed
from billing_marts.fct_gate_results
group by run_label, gate
order by checked_at desc, gate
limit 40
"""
GATE_FAILURES = """
select run_label, gate, check_name, verdict, count_failed_expectations, checked_at
from billing_marts.fct_gate_results
where verdict != 'pass'
order by checked_at desc, gate, check_name
limit 50
"""
ENDPOINTS = """
select endpoint_id, url, enabled, count_deliveries, count_delivered, count_pending, count_dead_lettered,
    attempt_success_rate, latency_p50_ms, latency_p95_ms, last_failure_at, last_failure_error
from billing_marts.fct_webhook_endpoint_health
order by endpoint_id
"""
ENDPOINTS_DAILY = """
select attempt_date, endpoint_id, attempt_success_rate
from billing_marts.fct_webhook_endpoint_health_daily
order by attempt_date, endpoint_id
"""


def render() -> None:
    st.title("Data quality")
    unbilled = frame(UNBILLED_BY_DAY)
    _rejects(unbilled[unbilled["outcome"] == "rejected"])
    _duplicates(unbilled[unbilled["outcome"] == "duplicate"])
    _gates()
    _webhooks()


def _rejects(rejected: pd.DataFrame) -> None:
    st.header("Rejected events")
    st.caption("Deduped events billing cannot use, by their first reject reason and the day they were loaded"
               " (SPEC §2; billing_marts.fct_data_quality_daily).")
    st.metric("Rejected events", f"{rejected['count_events'].sum():,}")
    if rejected.empty:
        return
    by_reason = rejected.groupby("reason", as_index=False)["count_events"].sum()
    reasons, chart = st.columns([1, 2])
    reasons.table(by_reason.rename(columns={"count_events": "events"}), hide_index=True)
    chart.bar_chart(rejected.assign(day=rejected["ingested_date"].map(str)), x="day", y="count_events",
                    color="reason", x_label="loaded (UTC day)", y_label="events")


def _duplicates(duplicates: pd.DataFrame) -> None:
    st.header("Duplicates")
    st.caption("Rows dropped because an earlier row had the same reference; conflicting ones differ from"
               " the billed winner (billing_marts.fct_data_quality_daily, fct_usage_event_duplicates).")
    dropped, conflicting = st.columns(2)
    dropped.metric("Duplicates dropped", f"{duplicates['count_events'].sum():,}")
    conflicts = duplicates.loc[duplicates["reason"] == "conflicting_duplicate", "count_events"].sum()
    conflicting.metric("Conflicting duplicates", f"{conflicts:,}")
    rows = frame(CONFLICTING)
    if not rows.empty:
        st.table(rows, hide_index=True)


def _gates() -> None:
    st.header("Gate results")
    st.caption("Each run's verdict per gate and check: pass, acknowledged (failed, let through by an operator)"
               " or fail (stopped the run) (SPEC §9; billing_marts.fct_gate_results).")
    runs = frame(GATE_RUNS)
    if runs.empty:
        st.info("No gate has run yet.")
        return
    passed, acknowledged, failed = st.columns(3)
    passed.metric("Checks passed", f"{runs['passed'].sum():,}")
    acknowledged.metric("Checks acknowledged", f"{runs['acknowledged'].sum():,}")
    failed.metric("Checks failed", f"{runs['failed'].sum():,}")
    st.table(runs.assign(checked_at=runs["checked_at"].map(lambda moment: f"{moment:%Y-%m-%d %H:%M:%S}")),
             hide_index=True)
    failures = frame(GATE_FAILURES)
    if not failures.empty:
        st.subheader("Checks that did not pass")
        st.table(failures, hide_index=True)


def _webhooks() -> None:
    st.header("Webhook health")
    st.caption("Deliveries per endpoint by status, and their attempts' success rate and latency"
               " (SPEC §8; billing_marts.fct_webhook_endpoint_health, fct_webhook_endpoint_health_daily).")
    endpoints = frame(ENDPOINTS)
    if endpoints.empty:
        st.info("No webhook endpoint.")
        return
    st.table(pd.DataFrame({
        "endpoint": endpoints["endpoint_id"],
        "url": endpoints["url"],
        "enabled": endpoints["enabled"].map({True: "yes", False: "no"}),
        "deliveries": endpoints["count_deliveries"].map(number),
        "delivered": endpoints["count_delivered"].map(number),
        "pending": endpoints["count_pending"].map(number),
        "dead-lettered": endpoints["count_dead_lettered"].map(number),
        "attempt success": endpoints["attempt_success_rate"].map(percent),
        "p50 ms": [number(latency, 0) for latency in endpoints["latency_p50_ms"]],
        "p95 ms": [number(latency, 0) for latency in endpoints["latency_p95_ms"]],
        "last failure": endpoints["last_failure_error"].fillna(""),
    }), hide_index=True)
    daily = frame(ENDPOINTS_DAILY)
    if not daily.empty:
        st.line_chart(daily.assign(day=daily["attempt_date"].map(str),
                                   success=daily["attempt_success_rate"].astype(float)),
                      x="day", y="success", color="endpoint_id", x_label="UTC day", y_label="attempt success rate")
