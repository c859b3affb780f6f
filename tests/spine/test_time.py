"""SPEC §10 through the CLI: any past as_of closes (2024 history), a future one is refused everywhere
before anything runs, and invoices say when, by which run and until when they are due.

    tokyo_co  Asia/Tokyo, net 30 days, auto_charge  s_tokyo from 2024-01-31T15:00Z (Tokyo Feb 1)
    utc_co    UTC, net 0 (default), request_payment  s_utc from 2024-02-01

Each pays a $10 base fee a month plus $0.01 a call. The close at 2024-04-02T20:00Z (Tokyo's April 3,
UTC's April 2) closes February and March of both.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from billing.catalog import apply_catalog
from billing.loading import load_events
from billing.orchestration import run_dag
from conftest import query, reset_warehouse, run_cli

from spine.catalogs import PRO_PLAN
from spine.events import write_csv

pytestmark = [pytest.mark.slow, pytest.mark.independent]

CATALOG = PRO_PLAN + """
customers:
  - {customer_id: tokyo_co, name: Tokyo Co, currency: USD, timezone: Asia/Tokyo, net_terms_days: 30,
     collection_method: auto_charge, payment_method_id: pm_card_visa}
  - {customer_id: utc_co, name: UTC Co, currency: USD, collection_method: request_payment}
subscriptions:
  - {subscription_id: s_tokyo, customer_id: tokyo_co, plan_id: pro, started_at: "2024-01-31T15:00:00Z",
     billing_anchor_day: 1}
  - {subscription_id: s_utc, customer_id: utc_co, plan_id: pro, started_at: "2024-02-01T00:00:00Z"}
"""

EVENTS = [
    ("t-feb", "tokyo_co", "api_call", 200, "", "2024-02-10T00:00:00Z"),
    ("t-mar", "tokyo_co", "api_call", 300, "", "2024-03-10T00:00:00Z"),
    ("t-apr", "tokyo_co", "api_call", 50, "", "2024-04-10T00:00:00Z"),
    ("u-feb", "utc_co", "api_call", 500, "", "2024-02-15T00:00:00Z"),
    ("u-mar", "utc_co", "api_call", 100, "", "2024-03-15T00:00:00Z"),
    ("u-apr", "utc_co", "api_call", 70, "", "2024-04-15T00:00:00Z"),
]
AS_OF = "2024-04-02T20:00:00Z"
INVOICE_COLUMNS = (
    "select invoice_number, subscription_id, period_start::date::text, total_minor, status,"
    " invoice_date::text, due_at, issued_in_backfill from billing.invoices order by invoice_number"
)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _load(tmp_path) -> None:
    reset_warehouse()
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    apply_catalog(tmp_path / "catalog.yaml")
    load_events(write_csv(tmp_path / "events.csv", EVENTS), show_progress=False)


def test_a_close_in_2024_bills_history_with_the_runs_dates(warehouse, tmp_path):
    _load(tmp_path)

    closed = run_cli("close-cycles", "--as-of", AS_OF)

    run_id = closed.stdout.strip().removeprefix("billing_cycle_close run ").removesuffix(": success")
    # Tokyo's invoice_date is its local April 3, due 30 days later at Tokyo midnight; UTC's is
    # April 2, due at once. Invoices are numbered by period_end (Tokyo's February ends first).
    tokyo_due = _utc("2024-05-03T00:00:00+09:00")
    utc_due = _utc("2024-04-02T00:00:00+00:00")
    assert query(INVOICE_COLUMNS) == [
        ("INV-000001", "s_tokyo", "2024-01-31", 1_200, "paid", "2024-04-03", tokyo_due, False),
        ("INV-000002", "s_utc", "2024-02-01", 1_500, "open", "2024-04-02", utc_due, False),
        ("INV-000003", "s_tokyo", "2024-02-29", 1_300, "paid", "2024-04-03", tokyo_due, False),
        ("INV-000004", "s_utc", "2024-03-01", 1_100, "open", "2024-04-02", utc_due, False),
    ]
    assert query("select distinct issued_by_run from billing.invoices") == [(run_id,)]
    # the charges are dated by the run's logical time, not the wall clock
    assert query("select distinct attempted_for from billing.charge_attempts") == [(_utc(AS_OF),)]
    assert query("select dag_id, run_id, as_of, backfill, outcome from billing.runs") == [
        ("billing_cycle_close", run_id, _utc(AS_OF), False, "succeeded"),
    ]
    assert query("select count(*) from billing.run_lease") == [(0,)]


def test_a_future_as_of_is_refused_everywhere_before_anything_runs(warehouse, tmp_path):
    _load(tmp_path)
    future = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()

    for command in (("close-cycles", "--as-of", future),
                    ("run", "billing_cycle_close", "--logical-date", future),
                    ("backfill", "--from", AS_OF, "--to", future)):
        refused = run_cli(*command, check=False)
        assert refused.returncode == 2, (command, refused.stdout, refused.stderr)
        assert "is in the future" in refused.stderr and "Traceback" not in refused.stderr, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr

    # a DAG run given a future as_of (a trigger's conf) fails in its first task: nothing is built
    outcome = run_dag("billing_cycle_close", logical_date=_utc(AS_OF), conf={"as_of": future})
    assert outcome.failed_tasks == ("begin_run",)
    assert "is in the future" in outcome.failure_messages["begin_run"]
    assert set(outcome.not_run) == {
        "check_raw_contracts", "build_event_models", "check_closing_events", "rate_draft_invoices",
        "check_draft_invoices", "issue_invoices", "check_ledger", "charge_invoices", "render_invoice_pdfs",
        "dispatch_webhooks", "end_run",
    }
    assert query("select count(*) from billing.invoices") == [(0,)]
    assert query("select count(*) from billing.runs") == [(0,)]


def test_a_backfill_says_what_it_will_close_and_marks_its_runs_and_invoices(warehouse, tmp_path):
    _load(tmp_path)

    done = run_cli("backfill", "--from", "2024-01-01T00:00:00Z", "--to", "2024-03-01T02:00:00Z")

    # Tokyo's February ends at 15:00Z on the 29th, UTC's at midnight: two closing moments
    assert "backfill: 2 close(s) of billing_cycle_close, 2 period(s)" in done.stdout, done.stdout
    for moment in ("2024-02-29 16:00", "2024-03-01 01:00"):
        assert f"  {moment} UTC: 1 period(s) of 1 customer(s)" in done.stdout, done.stdout
    assert "backfill done: 2 close(s)" in done.stdout
    assert query(
        "select invoice_number, subscription_id, total_minor, invoice_date::text, issued_in_backfill"
        " from billing.invoices order by invoice_number"
    ) == [
        ("INV-000001", "s_tokyo", 1_200, "2024-03-01", True),  # closed at 16:00Z, 01:00 in Tokyo
        ("INV-000002", "s_utc", 1_500, "2024-03-01", True),
    ]
    assert query("select count(*), bool_and(backfill) from billing.runs where dag_id = 'billing_cycle_close'") == [
        (2, True)
    ]

    again = run_cli("backfill", "--from", "2024-01-01T00:00:00Z", "--to", "2024-03-01T02:00:00Z")
    assert "nothing to run" in again.stdout
    assert query("select count(*) from billing.invoices") == [(2,)]
