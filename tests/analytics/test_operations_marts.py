"""The operations marts on a small real warehouse: usage history, webhook health, data quality, gates.

Scenario: one customer (request_payment) on a usage plan since May 2026. Its May events are
loaded on May 10 and 11 with rejects and duplicates among them; the May close (as of June 1) runs
the closing_events gate twice (failed, then acknowledged) and the draft_invoices gate, and issues
the May invoice. Webhooks go to a real local receiver (`ok`), to a closed port (`down`: one delivery
dead-lettered after every retry, one pending) and to nowhere (`off`, disabled). Every expected
value is counted by hand from that.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from billing import transform
from billing.catalog import apply_catalog
from billing.invoicing import issue_invoices
from billing.quality import GateFailed
from billing.quality import billing_gates as gates
from billing.quality.acknowledgements import acknowledge
from billing.warehouse import connect
from billing.webhooks import MAX_ATTEMPTS, WebhookReceiver, dispatch_webhooks, enqueue_event
from billing.window import ClosingWindow
from conftest import query, reset_warehouse

pytestmark = pytest.mark.slow

CATALOG = """
meters:
  - {event_name: api_call, display_name: API calls, aggregation: sum}
  - {event_name: storage_gb, display_name: Storage, aggregation: max}
plans:
  - plan_id: usage_usd
    name: Usage
    currency: USD
    interval: month
    charges:
      - {event_name: api_call, pricing_model: per_unit, unit_price: 0.01}
customers:
  - {customer_id: c1, name: One, currency: USD, collection_method: request_payment}
subscriptions:
  - {subscription_id: s1, customer_id: c1, plan_id: usage_usd, started_at: "2026-05-01T00:00:00Z"}
"""
# Rejects are 4 of the window's 8 deduped events: above 20 %, so the reject-rate check fails.
QUALITY_CONFIG = "closing_events:\n  max_reject_rate: 0.2\n  reject_rate_min_events: 1\n"
MAY_CLOSE = "2026-06-01T01:00:00+00:00"
GRACE = "1 hours"
RUN_LABEL = "as_of=2026-06-01T01:00:00+00:00"
MAY_10 = datetime(2026, 5, 10, 12, tzinfo=UTC)
MAY_11 = datetime(2026, 5, 11, 12, tzinfo=UTC)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
DISPATCH_START = datetime(2026, 6, 2, 12, tzinfo=UTC)
CHARGE_FAILED = "billing.charge.failed"
OPERATIONS_MARTS = ("fct_usage_history", "fct_webhook_endpoint_health", "fct_webhook_endpoint_health_daily",
                    "fct_data_quality_daily", "fct_gate_results")


def insert_events(rows: list[tuple], ingested_at: datetime) -> None:
    with connect() as connection, connection.cursor() as cursor:
        cursor.executemany(
            "insert into raw.usage_events (reference, customer_id, event_name, value, occurred_at, ingested_at)"
            " values (%s, %s, %s, %s, %s, %s)",
            [(*row, ingested_at) for row in rows],
        )


def add_endpoint(endpoint_id: str, url: str, *, event_types: list[str] | None, enabled: bool = True) -> None:
    with connect() as connection:
        connection.execute(
            "insert into raw.webhook_endpoints (endpoint_id, url, secret, event_types, enabled)"
            " values (%s, %s, %s, %s, %s)",
            (endpoint_id, url, SECRET, event_types, enabled),
        )


def enqueue(event_type: str, subject_id: str) -> None:
    with connect() as connection:
        enqueue_event(connection, event_type=event_type, subject_id=subject_id, data={})


def closed_port_url() -> str:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/hook"


def may(day: int) -> datetime:
    return datetime(2026, 5, day, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def scenario(warehouse, tmp_path_factory):
    reset_warehouse()
    folder = tmp_path_factory.mktemp("operations")
    (folder / "catalog.yaml").write_text(CATALOG)
    apply_catalog(folder / "catalog.yaml")
    # May 10: 3 calls (60 in all), storage 5, two events for an unknown meter, one for an unknown
    # customer. May 11: one without a customer, a same-payload copy of e1, a different copy of e2.
    insert_events([
        ("e1", "c1", "api_call", 10, may(3)), ("e2", "c1", "api_call", 20, may(4)),
        ("e3", "c1", "api_call", 30, may(5)), ("g1", "c1", "storage_gb", 5, may(6)),
        ("x1", "c1", "nope", 1, may(6)), ("x2", "c1", "nope", 1, may(7)), ("x3", "nobody", "api_call", 1, may(7)),
    ], MAY_10)
    insert_events([
        ("x4", None, "api_call", 1, may(8)), ("e1", "c1", "api_call", 10, may(3)), ("e2", "c1", "api_call", 99, may(4)),
    ], MAY_11)

    transform.build(transform.EVENTS_SLICE, as_of=MAY_CLOSE, grace=GRACE)
    with pytest.MonkeyPatch.context() as patch:
        (folder / "quality.yml").write_text(QUALITY_CONFIG)
        patch.setenv("BILLING_QUALITY_CONFIG", str(folder / "quality.yml"))
        with pytest.raises(GateFailed):
            gates.check_closing_events(as_of=MAY_CLOSE, grace=GRACE)
        acknowledge(gate="closing_events", check_name="reject_rate_is_below_threshold",
                    as_of=ClosingWindow.parse(MAY_CLOSE, GRACE).as_of, reason="test rejects", by="test")
        gates.check_closing_events(as_of=MAY_CLOSE, grace=GRACE)
    transform.build(transform.RATING_SLICE, as_of=MAY_CLOSE, grace=GRACE)
    gates.check_draft_invoices(as_of=MAY_CLOSE, grace=GRACE)
    assert issue_invoices(issued_by_run="test_operations_marts").issued == 1  # announces it

    with WebhookReceiver(SECRET) as receiver:
        add_endpoint("ok", receiver.url, event_types=None)
        add_endpoint("down", closed_port_url(), event_types=[CHARGE_FAILED])
        add_endpoint("off", receiver.url, event_types=None, enabled=False)
        enqueue(CHARGE_FAILED, "charge_1")
        # day 0: ok gets the invoice and charge_1; down fails charge_1, then once a day until
        # its last attempt dead-letters it
        for day in range(MAX_ATTEMPTS):
            dispatch_webhooks(now=DISPATCH_START + timedelta(days=day))
        enqueue(CHARGE_FAILED, "charge_2")
        dispatch_webhooks(now=DISPATCH_START + timedelta(days=MAX_ATTEMPTS))
    transform.build(("fqn:marts.operations",), as_of=MAY_CLOSE, grace=GRACE)
    return folder


def rows(sql: str, *params) -> list[dict]:
    from psycopg.rows import dict_row

    with connect() as connection, connection.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(sql, params).fetchall()


def test_usage_history_shows_usage_beside_what_the_invoice_billed(scenario):
    history = rows(
        "select event_name, quantity, count_events, is_closed, is_invoiced, is_current, invoice_status,"
        " currency, billed_quantity, billed_amount_minor, billed_amount"
        " from billing_marts.fct_usage_history where customer_id = 'c1' order by event_name"
    )
    assert history == [
        # e1..e3; the duplicates are not usage, the conflicting copy of e2 (99) lost to e2
        {"event_name": "api_call", "quantity": 60, "count_events": 3, "is_closed": True, "is_invoiced": True,
         "is_current": False, "invoice_status": "open", "currency": "USD", "billed_quantity": 60,
         "billed_amount_minor": 60, "billed_amount": Decimal("0.6")},
        # not charged by the plan: usage only
        {"event_name": "storage_gb", "quantity": 5, "count_events": 1, "is_closed": True, "is_invoiced": True,
         "is_current": False, "invoice_status": "open", "currency": "USD", "billed_quantity": None,
         "billed_amount_minor": None, "billed_amount": None},
    ]


def test_endpoint_health_counts_deliveries_and_attempts(scenario):
    health = {row.pop("endpoint_id"): row for row in rows(
        "select endpoint_id, enabled, count_deliveries, count_delivered, count_pending, count_dead_lettered,"
        " count_attempts, count_successful_attempts, attempt_success_rate, last_success_at, last_failure_at,"
        " last_failure_status from billing_marts.fct_webhook_endpoint_health"
    )}
    last_day = DISPATCH_START + timedelta(days=MAX_ATTEMPTS)
    assert health == {
        # invoice.generated, charge_1, charge_2: each delivered at its first attempt
        "ok": {"enabled": True, "count_deliveries": 3, "count_delivered": 3, "count_pending": 0,
               "count_dead_lettered": 0, "count_attempts": 3, "count_successful_attempts": 3,
               "attempt_success_rate": 1, "last_success_at": last_day, "last_failure_at": None,
               "last_failure_status": None},
        # charge_1: MAX_ATTEMPTS (8) failures, dead-lettered; charge_2: one failure, pending
        "down": {"enabled": True, "count_deliveries": 2, "count_delivered": 0, "count_pending": 1,
                 "count_dead_lettered": 1, "count_attempts": MAX_ATTEMPTS + 1, "count_successful_attempts": 0,
                 "attempt_success_rate": 0, "last_success_at": None, "last_failure_at": last_day,
                 "last_failure_status": None},
        "off": {"enabled": False, "count_deliveries": 0, "count_delivered": 0, "count_pending": 0,
                "count_dead_lettered": 0, "count_attempts": 0, "count_successful_attempts": 0,
                "attempt_success_rate": None, "last_success_at": None, "last_failure_at": None,
                "last_failure_status": None},
    }


def test_endpoint_health_latency_and_last_error_come_from_the_attempts(scenario):
    [(p50, p95, slowest, error)] = query(
        "select latency_p50_ms, latency_p95_ms, latency_max_ms, last_failure_error"
        " from billing_marts.fct_webhook_endpoint_health where endpoint_id = 'down'"
    )
    latencies = sorted(ms for (ms,) in query(
        "select latency_ms from billing.webhook_delivery_attempts where endpoint_id = 'down'"
    ))
    [(last_error,)] = query(
        "select error from billing.webhook_delivery_attempts where endpoint_id = 'down' and attempted_at = %s",
        DISPATCH_START + timedelta(days=MAX_ATTEMPTS),
    )
    # 9 latencies: the median is the 5th; the 95th percentile lies 0.6 of the way from the 8th to the 9th
    assert (p50, p95, slowest) == pytest.approx(
        (latencies[4], latencies[7] + 0.6 * (latencies[8] - latencies[7]), latencies[8])
    )
    assert error == last_error and error


def test_endpoint_health_never_exposes_a_secret(scenario):
    columns = {name for (name,) in query(
        "select column_name from information_schema.columns"
        " where table_schema = 'billing_marts' and table_name like 'fct_webhook%%'"
    )}
    assert not {column for column in columns if "secret" in column}
    assert not query(
        "select 1 from billing_marts.fct_webhook_endpoint_health where url like '%%' || %s || '%%'", SECRET
    )


def test_endpoint_health_daily_counts_each_days_attempts(scenario):
    daily = query(
        "select endpoint_id, attempt_date, count_attempts, count_successful_attempts, attempt_success_rate"
        " from billing_marts.fct_webhook_endpoint_health_daily order by 1, 2"
    )
    start = DISPATCH_START.date()
    assert daily == [
        *[("down", start + timedelta(days=day), 1, 0, 0) for day in range(MAX_ATTEMPTS + 1)],
        ("ok", start, 2, 2, 1),
        ("ok", start + timedelta(days=MAX_ATTEMPTS), 1, 1, 1),
    ]


def test_data_quality_daily_counts_rejects_and_duplicates_by_ingestion_day(scenario):
    assert query(
        "select ingested_date, outcome, reason, count_events, count_customers"
        " from billing_marts.fct_data_quality_daily order by 1, 2, 3"
    ) == [
        (date(2026, 5, 10), "rejected", "unknown_customer", 1, 1),
        (date(2026, 5, 10), "rejected", "unknown_meter", 2, 1),
        (date(2026, 5, 11), "duplicate", "conflicting_duplicate", 1, 1),
        (date(2026, 5, 11), "duplicate", "duplicate", 1, 1),
        (date(2026, 5, 11), "rejected", "missing_customer", 1, 0),
    ]


def test_gate_results_hold_each_checks_latest_verdict(scenario):
    results = {(gate, check): row for gate, check, *row in query(
        "select gate, check_name, success, acknowledged, verdict, count_gate_runs"
        " from billing_marts.fct_gate_results where run_label = %s",
        RUN_LABEL,
    )}
    window = ClosingWindow.parse(MAY_CLOSE, GRACE)
    checks = {(name, check.name) for name in ("closing_events", "draft_invoices")
              for check in gates.gate_for(name, window).checks}
    assert set(results) == checks
    # closing_events ran twice: its reject rate failed both times, acknowledged the second time
    assert results.pop(("closing_events", "reject_rate_is_below_threshold")) == [False, True, "acknowledged", 2]
    assert {tuple(row) for row in results.values()} == {(True, False, "pass", 2), (True, False, "pass", 1)}
    assert {check: row[3] for (gate, check), row in results.items() if gate == "draft_invoices"} == {
        check: 1 for gate, check in checks if gate == "draft_invoices"
    }


def test_drafts_say_which_run_built_them_and_stay_after_issue(scenario):
    # The May draft was issued: it is still listed, under its invoice's id, as of the close.
    assert query(
        "select drafts.drafted_as_of, invoices.invoice_number, drafts.subtotal_minor = invoices.subtotal_minor"
        " from billing_marts.fct_draft_invoices as drafts"
        " inner join billing.invoices as invoices using (invoice_id)"
    ) == [(datetime(2026, 6, 1, 1, tzinfo=UTC), "INV-000001", True)]


def test_operations_marts_outlive_the_hourly_pipeline_and_the_close(scenario):
    # dbt replaces staging, the event marts and fct_meter_usage with `drop ... cascade`
    before = query("select count(*) from billing_marts.fct_usage_history")
    transform.update_usage(as_of=MAY_CLOSE, grace=GRACE)
    for model in OPERATIONS_MARTS:
        assert query(f"select count(*) > 0 from billing_marts.{model}") == [(True,)], model
    transform.build(transform.EVENTS_SLICE, as_of=MAY_CLOSE, grace=GRACE)
    transform.build(transform.RATING_SLICE, as_of=MAY_CLOSE, grace=GRACE)
    for model in OPERATIONS_MARTS:
        assert query(f"select count(*) > 0 from billing_marts.{model}") == [(True,)], model
    assert query("select count(*) from billing_marts.fct_usage_history") == before
