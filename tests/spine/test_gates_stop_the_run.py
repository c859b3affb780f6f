"""A failed gate stops the run before anything is issued, charged or announced; fixing the data (or
acknowledging a known anomaly) and re-running completes it with the invoice numbers a clean run uses."""

from __future__ import annotations

from pathlib import Path

import pytest
from billing.catalog import apply_catalog
from billing.ledger import JournalEntry, credit, debit, post
from billing.loading import load_events
from billing.orchestration import run_dag as run_dag_outcome
from billing.quality.acknowledgements import acknowledge
from billing.warehouse import connect
from billing.window import parse_timestamp
from conftest import query, reset_warehouse, run_dag

from spine.catalogs import OVERLAPPING_SUBSCRIPTION, TWICE
from spine.events import usage, write_csv

pytestmark = pytest.mark.slow

FIX = """
subscriptions:
  - {subscription_id: s_first, customer_id: twice, plan_id: usage_usd, started_at: "2026-06-01T00:00:00Z",
     ended_at: "2026-06-15T00:00:00Z"}
"""
AS_OF = "2026-07-01T01:00:00+00:00"
NOTHING_ISSUED = [(0,)]


def close(**conf):
    return run_dag_outcome("billing_cycle_close", logical_date=parse_timestamp(AS_OF), conf={"as_of": AS_OF, **conf})


def money_moved() -> list[tuple]:
    # a stopped run announces itself (billing.run.failed), and nothing else
    return query(
        "select (select count(*) from billing.invoices) + (select count(*) from billing.charge_attempts)"
        " + (select count(*) from billing.webhook_events where event_type <> 'billing.run.failed')"
    )


def test_gates_stop_the_close_until_the_data_is_fixed_or_acknowledged(warehouse, tmp_path: Path, monkeypatch):
    reset_warehouse()
    (tmp_path / "catalog.yaml").write_text(TWICE)
    apply_catalog(tmp_path / "catalog.yaml")
    with connect() as connection:
        connection.execute(OVERLAPPING_SUBSCRIPTION)
    events = usage("twice", "api_call", [1_000, 2_000], "2026-06-10", "early") + usage(
        "twice", "api_call", [4_000], "2026-06-20", "late")
    load_events(write_csv(tmp_path / "events.csv", events), show_progress=False)
    quality = tmp_path / "quality.yml"
    quality.write_text("closing_events:\n  meters:\n    api_call: {max_value: 3000}\n")
    monkeypatch.setenv("BILLING_QUALITY_CONFIG", str(quality))

    # 1. The raw data breaks its contract: the first gate fails, nothing after it runs.
    stopped = close()
    assert stopped.failed_tasks == ("check_raw_contracts",)
    message = stopped.failure_messages["check_raw_contracts"]
    assert message.startswith("GateFailed: gate raw_contracts failed:"
                              " check subscriptions__one_active_subscription_per_customer:"
                              " expect_table_row_count_to_equal(value=0) — observed 1, e.g. {customer_id: 'twice',"
                              " subscription_id: 's_first', overlapping_subscription_id: 's_second'")
    assert money_moved() == NOTHING_ISSUED
    assert query("select count(*) from billing.quality_results where gate = 'closing_events'") == [(0,)]

    # 2. Fixed; now an event is above the configured bound for its meter: the events gate stops.
    (tmp_path / "fix.yaml").write_text(FIX)
    apply_catalog(tmp_path / "fix.yaml")
    stopped = close()
    assert stopped.failed_tasks == ("check_closing_events",)
    assert ("check values_are_in_range: expect_table_row_count_to_equal(value=0) — observed 1,"
            " e.g. {reference: 'late-0', event_name: 'api_call', aggregation: 'sum', value: 4000") in (
        stopped.failure_messages["check_closing_events"])
    assert money_moved() == NOTHING_ISSUED

    # 3. A known big customer: acknowledged for this window, the close completes.
    acknowledge(gate="closing_events", check_name="values_are_in_range", as_of=parse_timestamp(AS_OF),
                reason="twice's launch day, confirmed with sales", by="ops")
    run_dag("billing_cycle_close", AS_OF, as_of=AS_OF)
    assert query("select invoice_number, subscription_id, total_minor, status from billing.invoices order by 1") == [
        ("INV-000001", "s_first", 300, "paid"),   # [Jun 1, Jun 15): 3,000 calls × $0.001
        ("INV-000002", "s_second", 400, "paid"),  # [Jun 15, Jul 1): 4,000 calls
    ]
    assert query(
        "select check_name, acknowledged from billing.quality_results where gate = 'closing_events' and not success"
        " order by checked_at"
    ) == [("values_are_in_range", False), ("values_are_in_range", True)]


def test_ledger_gate_stops_charge_retries_until_fixed(warehouse, tmp_path: Path):
    """Runs on the previous test's invoices: a second successful charge recorded for one of them, and
    a balanced journal entry that leaves it receivable though it is paid."""
    [(invoice_id, total)] = query(
        "select invoice_id, total_minor from billing.invoices where invoice_number = 'INV-000001'"
    )

    with connect() as connection:
        connection.execute(
            "insert into billing.charge_attempts (idempotency_key, invoice_id, attempt_no, amount_minor, currency,"
            " status, attempted_for) values ('ch_manual', %s, 9, %s, 'USD', 'succeeded', now())",
            (invoice_id, total),
        )
        connection.execute(
            "insert into billing.journal_entries (entry_id, kind, invoice_id, customer_id, currency, description)"
            " values ('wrong', 'payment_succeeded', %s, 'twice', 'USD', 'a refund booked as a payment')",
            (invoice_id,),
        )
        connection.execute(
            "insert into billing.journal_lines (entry_id, line_no, account, debit_minor, credit_minor)"
            " values ('wrong', 1, 'accounts_receivable', 300, 0), ('wrong', 2, 'cash', 0, 300)"
        )
    before = money_moved()
    stopped = run_dag_outcome("charge_retries", logical_date=parse_timestamp("2026-07-02T02:00:00Z"))
    assert stopped.failed_tasks == ("check_ledger",)
    assert "check no_invoice_with_two_successful_charges" in stopped.failure_messages["check_ledger"]
    # paid: nothing remains, yet the ledger holds it receivable
    assert (f"check receivables_equal_amount_remaining: expect_table_row_count_to_equal(value=0) — observed 1,"
            f" e.g. {{invoice_id: '{invoice_id}', currency: 'USD', receivable_minor: 300, amount_remaining_minor: 0}}"
            ) in stopped.failure_messages["check_ledger"]
    assert money_moved() == before

    with connect() as connection:
        connection.execute("delete from billing.charge_attempts where idempotency_key = 'ch_manual'")
        # the ledger is append-only: a wrong entry is corrected by its reversal
        post(connection, [JournalEntry(
            entry_id="wrong:reversed", kind="correction", customer_id="twice", currency="USD",
            description="reverses entry wrong", invoice_id=invoice_id,
            postings=(debit("cash", 300), credit("accounts_receivable", 300)),
        )])
    run_dag("charge_retries", "2026-07-02T02:00:00Z")
