"""The dbt semantic layer through MetricFlow's `mf`, on a closed warehouse: each metric asked for by
name gives the hand-computed figures, which are also its mart's.

One warehouse (the spine's June, closed), one MetricFlow configuration for every query: setting it
up costs a `dbt debug` of about 3 s, each query then about 0.1 s.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import pytest
from billing.metrics import metricflow_configuration, run_mf
from conftest import query, reset_warehouse, run_cli, run_dag
from spine.events import june_events, write_csv

# MetricFlow's spinner (halo) calls Thread.setDaemon
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:setDaemon:DeprecationWarning")]

CATALOG = Path(__file__).parents[1] / "spine" / "catalog.yaml"
JUNE_CLOSE = "2026-07-01T01:00:00Z"


@pytest.fixture(scope="module")
def june_closed(warehouse, tmp_path_factory):
    reset_warehouse()
    folder = tmp_path_factory.mktemp("semantic")
    run_cli("init")
    run_cli("catalog", "apply", str(CATALOG))
    run_cli("load", "events", str(write_csv(folder / "june.csv", june_events())))
    # in this process: a `billing close-cycles` would start Airflow, dbt and GX again (about 15 s)
    run_dag("billing_cycle_close", JUNE_CLOSE, as_of=JUNE_CLOSE)
    return folder


@pytest.fixture(scope="module")
def mf(june_closed):
    """`mf query --metrics METRICS --group-by GROUP_BY [OPTIONS]` → {group-by values: metric values as
    numbers, None when empty}, every query on one MetricFlow configuration."""
    started = time.monotonic()
    configuration = metricflow_configuration()
    print(f"MetricFlow set up in {time.monotonic() - started:.1f} s")
    result = june_closed / "result.csv"

    def run(metrics: str, group_by: str, *options: str) -> dict[tuple, tuple]:
        result.unlink(missing_ok=True)
        arguments = ["query", "--metrics", metrics, "--group-by", group_by, *options, "--csv", str(result), "--quiet"]
        assert run_mf(arguments, configuration) == 0
        rows = list(csv.DictReader(result.open()))
        return {tuple(row[key] for key in group_by.split(",")):
                tuple(float(row[metric]) if row[metric] else None for metric in metrics.split(","))
                for row in rows}

    run.configuration = configuration
    return run


def test_mf_validates_the_semantic_layer_against_the_warehouse(mf):
    # semantic validations, then every semantic model, dimension, entity, measure and metric queried
    assert run_mf(["validate-configs"], mf.configuration) == 0


def test_usage_by_month_customer_and_meter_is_the_meter_usage_mart(mf):
    usage = mf("usage_quantity,usage_events", "metric_time__month,customer,meter")
    assert usage == {
        ("2026-06-01 00:00:00", "usage_co", "api_call"): (1_234_567, 5),
        ("2026-06-01 00:00:00", "usage_co", "file_upload"): (42, 42),
        ("2026-06-01 00:00:00", "pro_heavy", "api_call"): (25_000, 2),
        ("2026-06-01 00:00:00", "pro_light", "api_call"): (8_000, 1),
        ("2026-06-01 00:00:00", "pro_late", "api_call"): (500, 1),
        ("2026-06-01 00:00:00", "yen_co", "api_call"): (1_234, 2),
        # Tokyo's period starts on 31 May at 15:00 UTC: metric_time is UTC
        ("2026-05-01 00:00:00", "tokyo_co", "api_call"): (40, 1),
        ("2026-06-01 00:00:00", "tokyo_co", "api_call"): (2, 1),
    }
    mart = query(
        "select to_char(date_trunc('month', period_start at time zone 'UTC'), 'YYYY-MM-DD HH24:MI:SS'),"
        " customer_id, event_name, sum(quantity), sum(count_events)"
        " from billing_marts.fct_meter_usage group by 1, 2, 3"
    )
    assert usage == {tuple(row[:3]): tuple(float(value) for value in row[3:]) for row in mart}


def test_rejected_events_by_reason_are_the_rejects_mart(mf):
    rejected = mf("rejected_events", "rejected_event__reject_reason")
    reasons = ["missing_reference", "missing_customer", "unknown_customer", "unknown_meter", "missing_timestamp",
               "future_timestamp", "invalid_value", "no_active_subscription"]
    assert rejected == {**{(reason,): (1,) for reason in reasons}, ("invalid_action",): (2,)}
    mart = query("select reject_reason, count(*) from billing_marts.fct_rejected_usage_events group by 1")
    assert rejected == {(reason,): (float(count),) for reason, count in mart}


def test_current_period_amounts_by_currency_are_the_current_usage_mart(mf):
    current = mf("current_period_amount,current_period_amount_minor,projected_period_amount_minor", "currency")
    # as of the June close, only Tokyo's July period has usage: 2 calls at ¥0.5
    assert current[("USD",)][:2] == (0, 0)
    assert current[("JPY",)][:2] == (1, 1)
    mart = query("select currency, sum(amount), sum(amount_minor), sum(projected_amount_minor)"
                 " from billing_marts.customer_usage_current_period group by 1")
    assert current == {(currency,): tuple(float(value) for value in values) for currency, *values in mart}


JUNE, JULY = "2026-06-01 00:00:00", "2026-07-01 00:00:00"


def test_revenue_by_service_month_and_currency_is_the_revenue_mart(mf):
    revenue = mf("revenue,revenue_minor", "metric_time__month,currency")
    # the spine's June invoices (tests/spine/test_cycle_close.py); Tokyo's service month is June in Tokyo
    assert revenue == {(JUNE, "USD"): (1_636.27, 163_627), (JUNE, "JPY"): (637, 637)}
    mart = query("select to_char(service_month, 'YYYY-MM-DD HH24:MI:SS'), currency, sum(revenue_major),"
                 " sum(revenue_minor) from billing_marts.fct_revenue group by 1, 2")
    assert revenue == {tuple(row[:2]): tuple(float(value) for value in row[2:]) for row in mart}


def test_revenue_by_plan_meter_and_customer_is_the_revenue_mart(mf):
    revenue = mf("revenue_minor", "metric_time__month,currency,plan,meter,customer")
    # a base fee has no meter ('')
    assert revenue == {
        (JUNE, "USD", "usage_usd", "api_call", "usage_co"): (123_457,),
        (JUNE, "USD", "usage_usd", "file_upload", "usage_co"): (420,),
        (JUNE, "USD", "pro_usd", "", "pro_heavy"): (9_900,),
        (JUNE, "USD", "pro_usd", "api_call", "pro_heavy"): (15_000,),
        (JUNE, "USD", "pro_usd", "", "pro_light"): (9_900,),
        (JUNE, "USD", "pro_usd", "api_call", "pro_light"): (0,),
        (JUNE, "USD", "pro_usd", "", "pro_late"): (4_950,),
        (JUNE, "USD", "pro_usd", "api_call", "pro_late"): (0,),
        (JUNE, "JPY", "metered_jpy", "api_call", "yen_co"): (617,),
        (JUNE, "JPY", "metered_jpy", "api_call", "tokyo_co"): (20,),
    }
    mart = query("select to_char(service_month, 'YYYY-MM-DD HH24:MI:SS'), currency, plan_id,"
                 " coalesce(event_name, ''), customer_id, sum(revenue_minor) from billing_marts.fct_revenue"
                 " group by 1, 2, 3, 4, 5")
    assert revenue == {tuple(row[:5]): (float(row[5]),) for row in mart}


def test_payment_success_rates_are_the_payment_success_mart(mf):
    payments = mf("payment_attempts,payment_success_rate,first_attempt_success_rate", "metric_time__month,currency")
    # attempted at the close, in July: Usage Co's card succeeds, Pro Light's is declined, Pro Late has none
    assert payments == {(JULY, "USD"): (3, pytest.approx(1 / 3), pytest.approx(1 / 3))}
    mart = query("select to_char(attempt_month, 'YYYY-MM-DD HH24:MI:SS'), currency, count_attempts, success_rate,"
                 " first_attempt_success_rate from billing_marts.fct_payment_success_monthly")
    assert payments == {tuple(row[:2]): tuple(pytest.approx(float(value)) for value in row[2:]) for row in mart}


def test_mrr_active_customers_and_churn_are_the_subscription_metrics_mart(mf):
    metrics = mf("mrr_minor,active_customers,churned_customers,logo_churn_rate", "metric_time__month,currency",
                 "--end-time", "2026-07-31")
    # June: base fees (Pro 99 each, a month's even for Pro Late's half month) plus June's usage lines;
    # July, before its close: the three base fees, so Usage Co, Yen Co and Tokyo Co churn
    assert metrics == {
        (JUNE, "USD"): (168_577, 4, 0, None), (JUNE, "JPY"): (637, 2, 0, None),
        (JULY, "USD"): (29_700, 3, 1, 0.25), (JULY, "JPY"): (0, 0, 2, 1.0),
    }
    mart = query("select to_char(month, 'YYYY-MM-DD HH24:MI:SS'), currency, mrr_minor, customers,"
                 " churned_customers, logo_churn_rate from billing_marts.fct_subscription_metrics_monthly")
    assert metrics == {tuple(row[:2]): tuple(None if value is None else float(value) for value in row[2:])
                       for row in mart}


def test_billing_mf_asks_for_a_metric_by_name(june_closed):
    # the command analysts type (README "Metrics"): the warehouse's connection comes from the project
    completed = run_cli("mf", "query", "--metrics", "usage_quantity", "--group-by", "meter", "--decimals", "0")
    lines = {tuple(line.split()) for line in completed.stdout.splitlines()}
    assert {("api_call", "1269343"), ("file_upload", "42")} <= lines
