"""A bare `airflow backfill create` for billing_cycle_close under a real Airflow scheduler.

`tests/spine/test_backfill.py` covers `billing backfill`, which runs `dag.test()` in-process. This
module uses the session's real Airflow 3 components (the compose file's api-server, dag-processor,
scheduler and two Celery workers, `tests/airflow_cluster.py`) and runs `airflow backfill create`
without `--max-active-runs` over three hourly slots, at two of which three periods become closable
(`period_end + grace`). The backfill's own limit (default 10) lets Airflow start the three runs at
once; the warehouse's run lease (`billing.runs`) makes them take turns, so they issue what one close
would have issued, each invoice once, each charge once, each webhook once.

Berlin's February ends at local midnight, one hour before UTC's (grace 1 hour):

    berlin_co  Europe/Berlin (UTC+1)  period_end 2026-02-28 23:00Z  closable 2026-03-01 00:00Z
    utc_co     UTC                    period_end 2026-03-01 00:00Z  closable 2026-03-01 01:00Z
    half_co    UTC, from Feb 15       period_end 2026-03-01 00:00Z  closable 2026-03-01 01:00Z

No other test uses these logical dates, so no run of the session already exists for them (a
backfill without `--reprocess-behavior` skips a slot that has one).

Runtime: about 30-55 s per run on 2 cores (each task is a new process that imports dbt or Great
Expectations again; `billing backfill` pays that once), so 1.5-3 minutes for the three runs.
"""

from __future__ import annotations

import base64
import os
from datetime import datetime
from pathlib import Path

import pytest
from billing.catalog import apply_catalog
from billing.loading import load_events
from billing.webhooks import WebhookReceiver
from conftest import query, reset_warehouse
from spine.events import write_csv

# The session's Airflow components and its `airflow` fixture: a plugin, so that both test modules
# share one session fixture, its assertions rewritten as pytest does for a plugin's.
pytest_plugins = ["airflow_cluster"]
pytest.register_assert_rewrite("airflow_cluster")
from airflow_cluster import DAG_ID, UTC, AirflowCluster  # noqa: E402

pytestmark = [pytest.mark.scheduler, pytest.mark.slow]

SLOTS = [
    datetime(2026, 3, 1, 0, tzinfo=UTC),  # Berlin's period is closable
    datetime(2026, 3, 1, 1, tzinfo=UTC),  # the two UTC periods are closable too
    datetime(2026, 3, 1, 2, tzinfo=UTC),  # nothing new
]

CATALOG = """
meters:
  - {event_name: api_call, display_name: API calls, aggregation: sum}
plans:
  - plan_id: pro_usd
    name: Pro
    currency: USD
    interval: month
    base_fee: 10
    charges:
      - {event_name: api_call, pricing_model: per_unit, unit_price: 0.01}
customers:
  - {customer_id: berlin_co, name: Berlin Co, currency: USD, timezone: Europe/Berlin,
     collection_method: auto_charge, payment_method_id: pm_card_visa}
  - {customer_id: utc_co, name: UTC Co, currency: USD, collection_method: request_payment}
  - {customer_id: half_co, name: Half Co, currency: USD, collection_method: auto_charge,
     payment_method_id: pm_card_visa}
subscriptions:
  - {subscription_id: s_berlin, customer_id: berlin_co, plan_id: pro_usd,
     started_at: "2026-01-31T23:00:00Z", billing_anchor_day: 1}
  - {subscription_id: s_utc, customer_id: utc_co, plan_id: pro_usd,
     started_at: "2026-02-01T00:00:00Z", billing_anchor_day: 1}
  - {subscription_id: s_half, customer_id: half_co, plan_id: pro_usd,
     started_at: "2026-02-15T00:00:00Z", billing_anchor_day: 1}
webhook_endpoints:
  - {endpoint_id: backfill_receiver, url: "%(url)s", secret: "%(secret)s", enabled: true}
"""

EVENTS = [
    # Berlin: 300 calls in its February; 22:30Z on Feb 28 is 23:30 in Berlin (February), 23:30Z
    # is already March 1 there, so those 1,000 calls belong to March and are not on this invoice.
    ("b-1", "berlin_co", "api_call", 200, "", "2026-02-10T12:00:00Z"),
    ("b-2", "berlin_co", "api_call", 100, "", "2026-02-28T22:30:00Z"),
    ("b-march", "berlin_co", "api_call", 1_000, "", "2026-02-28T23:30:00Z"),
    # UTC: 500 calls
    ("u-1", "utc_co", "api_call", 500, "", "2026-02-15T08:00:00Z"),
    # half: 50 calls in its half February
    ("h-1", "half_co", "api_call", 50, "", "2026-02-20T12:00:00Z"),
]

# (invoice_number, subscription_id, period_start, period_end, total_minor, status): $10 base fee (half
# of it for half_co's 14 of 28 days) + calls × $0.01, numbered by period_end, period_start,
# subscription_id, as one close at 01:00 would number them.
EXPECTED_INVOICES = [
    ("INV-000001", "s_berlin", "2026-01-31 23:00:00+00", "2026-02-28 23:00:00+00", 1_300, "paid"),
    ("INV-000002", "s_utc", "2026-02-01 00:00:00+00", "2026-03-01 00:00:00+00", 1_500, "open"),
    ("INV-000003", "s_half", "2026-02-15 00:00:00+00", "2026-03-01 00:00:00+00", 550, "paid"),
]


def test_a_bare_airflow_backfill_runs_its_slots_in_turn_and_issues_each_invoice_once(
    warehouse: str, tmp_path: Path, airflow: AirflowCluster
) -> None:
    reset_warehouse()
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    with WebhookReceiver(secret) as receiver:
        (tmp_path / "catalog.yaml").write_text(CATALOG % {"url": receiver.url, "secret": secret})
        apply_catalog(tmp_path / "catalog.yaml")
        load_events(write_csv(tmp_path / "events.csv", EVENTS), show_progress=False)

        runs = airflow.backfill(SLOTS[0], SLOTS[-1])

        assert [(run.logical_date, run.state) for run in runs] == [(slot, "success") for slot in SLOTS], (
            airflow.diagnostics(runs)
        )
        # each run's window is its logical date (CronTriggerTimetable: logical date = the slot)
        assert [airflow.resolved_window(run) for run in runs] == [
            {"as_of": slot.isoformat(), "grace": "1 hours"} for slot in SLOTS
        ]
        # Airflow ran them side by side; the lease made them take turns
        spans = query(
            "select as_of, backfill, acquired_at, released_at, outcome from billing.runs"
            " where dag_id = %s order by acquired_at", DAG_ID,
        )
        assert sorted((as_of, backfill, outcome) for as_of, backfill, _, _, outcome in spans) == [
            (slot, True, "succeeded") for slot in SLOTS
        ]
        assert all(earlier[3] <= later[2] for earlier, later in zip(spans, spans[1:], strict=False)), spans

        assert query(
            "select invoice_number, subscription_id, period_start::text, period_end::text, total_minor, status"
            " from billing.invoices order by invoice_number"
        ) == EXPECTED_INVOICES
        assert query("select bool_and(issued_in_backfill) from billing.invoices") == [(True,)]
        assert {run_id for (run_id,) in query("select issued_by_run from billing.invoices")} <= {
            run.run_id for run in runs
        }
        assert query(
            "select invoice_number, line_no, kind, quantity::text, amount_minor from billing.invoice_lines"
            " join billing.invoices using (invoice_id) order by invoice_number, line_no"
        ) == [
            ("INV-000001", 1, "base_fee", "1", 1_000), ("INV-000001", 2, "usage", "300", 300),
            ("INV-000002", 1, "base_fee", "1", 1_000), ("INV-000002", 2, "usage", "500", 500),
            ("INV-000003", 1, "base_fee", "0.5", 500), ("INV-000003", 2, "usage", "50", 50),
        ]
        # auto_charge invoices were charged once each, at the as_of of a run of the backfill
        charges = query(
            "select subscription_id, attempt_no, amount_minor, attempts.status, attempted_for"
            " from billing.charge_attempts as attempts join billing.invoices using (invoice_id)"
            " order by invoice_number"
        )
        assert [charge[:4] for charge in charges] == [("s_berlin", 1, 1_300, "succeeded"),
                                                      ("s_half", 1, 550, "succeeded")]
        assert all(charge[4] in SLOTS for charge in charges), charges
        assert sorted(query("select event_type, subject_id from billing.webhook_events")) == sorted(
            [("billing.invoice.generated", invoice_id) for (invoice_id,) in
             query("select invoice_id from billing.invoices")]
            + [("billing.charge.succeeded", key) for (key,) in
               query("select idempotency_key from billing.charge_attempts")]
        )
        assert sorted(webhook_id for webhook_id, _ in receiver.accepted) == sorted(
            event_id for (event_id,) in query("select event_id from billing.webhook_events")
        )
        assert receiver.rejected == 0
