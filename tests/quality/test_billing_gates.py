"""The billing gates on one scenario: each stops its bad batch (naming the check) and passes the clean one.

Scenario: two customers on a usage plan since March 2026, ~20 API-call events each a month.
March and April are invoiced (as of May 1); May is the closing window (as of June 1). The dbt
models are built in-process and the gates called directly, which is what their Airflow tasks do.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from billing import transform
from billing.catalog import apply_catalog
from billing.invoicing import issue_invoices
from billing.quality import GateFailed
from billing.quality import billing_gates as gates
from billing.quality.acknowledgements import acknowledge
from billing.quality.contract_gate import contract_tables_version, raw_contracts_gate
from billing.schema import init_warehouse
from billing.warehouse import connect
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
    base_fee: 10
    charges:
      - {event_name: api_call, pricing_model: per_unit, unit_price: 0.01}
customers:
  - {customer_id: c1, name: One, currency: USD, collection_method: auto_charge, payment_method_id: pm_card_visa}
  - {customer_id: c2, name: Two, currency: USD, collection_method: auto_charge, payment_method_id: pm_card_visa}
subscriptions:
  - {subscription_id: s1, customer_id: c1, plan_id: usage_usd, started_at: "2026-03-01T00:00:00Z"}
  - {subscription_id: s2, customer_id: c2, plan_id: usage_usd, started_at: "2026-03-01T00:00:00Z"}
"""
QUALITY_CONFIG = """
closing_events:
  max_reject_rate: 0.2
  reject_rate_min_events: 10
  volume: {min_baseline_events: 10}
  meters:
    api_call: {max_value: 1000}
"""
APRIL_CLOSE = "2026-05-01T01:00:00+00:00"
MAY_CLOSE = "2026-06-01T01:00:00+00:00"
WINDOW = {"as_of": MAY_CLOSE, "grace": "1 hours"}
# A relation in a schema dbt builds (generate_schema_name).
MODEL_RELATION = re.compile(r"\b(billing_staging|billing_intermediate|billing_marts)\.(\w+)")


def month_events(month: int, prefix: str, count: int = 20) -> list[tuple]:
    return [
        (f"{prefix}-{customer}-{month}-{index}", customer, "api_call", 10 + index,
         datetime(2026, month, 1 + index, 12, tzinfo=UTC))
        for customer in ("c1", "c2") for index in range(count)
    ]


def insert_events(rows: list[tuple], ingested_at: datetime | None = None) -> None:
    with connect() as connection, connection.cursor() as cursor:
        cursor.executemany(
            "insert into raw.usage_events (reference, customer_id, event_name, value, occurred_at, ingested_at)"
            " values (%s, %s, %s, %s, %s, coalesce(%s, now()))",
            [(*row, ingested_at) for row in rows],
        )


def execute(statement: str, *params) -> None:
    with connect() as connection:
        connection.execute(statement, params)


def build(as_of: str) -> None:
    transform.build(transform.EVENTS_SLICE, as_of=as_of, grace="1 hours")
    transform.build(transform.RATING_SLICE, as_of=as_of, grace="1 hours")


def failed_checks(error: GateFailed) -> set[str]:
    return {failure.check for failure in error.value.result.failures}


@pytest.fixture(scope="module")
def scenario(warehouse, tmp_path_factory, billing_home):
    reset_warehouse()
    folder = tmp_path_factory.mktemp("gates")
    (folder / "catalog.yaml").write_text(CATALOG)
    apply_catalog(folder / "catalog.yaml")
    insert_events(month_events(3, "h") + month_events(4, "h") + month_events(5, "may"))
    insert_events([("may-reject", "c1", "unknown_meter", 1, datetime(2026, 5, 3, tzinfo=UTC))])
    build(APRIL_CLOSE)
    # March and April: history, and open invoices for the ledger
    assert issue_invoices(issued_by_run="test_billing_gates").issued == 4
    build(MAY_CLOSE)
    return folder


@pytest.fixture
def quality_config(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "quality.yml"
    path.write_text(QUALITY_CONFIG)
    monkeypatch.setenv("BILLING_QUALITY_CONFIG", str(path))
    return path


def test_gates_read_only_models_of_the_dbt_project(warehouse, billing_home, quality_config):
    # No manifest yet (as on a fresh worker): naming a model parses the project first.
    (billing_home / "dbt" / "target" / "manifest.json").unlink(missing_ok=True)
    window = ClosingWindow.parse(MAY_CLOSE, "1 hours")
    read = {
        relation
        for name in gates.GATES
        for check in gates.gate_for(name, window).checks
        for relation in MODEL_RELATION.findall(check.query)
    }
    assert {name for _, name in read} == {
        "int_subscription_periods", "int_subscription_periods__awaiting_invoice", "int_usage_events__attributed",
        "int_usage_events__validated", "fct_draft_invoices", "fct_draft_invoice_lines", "fct_usage_event_duplicates",
        "fct_rejected_usage_events",
    }
    for schema, name in read:
        assert transform.ref(name) == f"{schema}.{name}"

    # A name the project does not have (a model renamed or removed: its old table may linger) fails loudly.
    with pytest.raises(transform.UnknownModel, match="'fct_draft_invoice' is not a model of the dbt project"):
        transform.ref("fct_draft_invoice")


def test_clean_window_passes_every_gate(scenario, quality_config):
    for check in (
        gates.check_raw_contracts,
        gates.check_closing_events,
        gates.check_draft_invoices,
        gates.check_ledger,
    ):
        assert check(**WINDOW).success
    assert query(
        "select gate, count(*) from billing.quality_results where run_label = %s and not success group by 1",
        f"as_of={MAY_CLOSE}",
    ) == []


def test_raw_contracts_stop_data_that_breaks_a_contract(scenario, quality_config):
    execute("insert into raw.customers (customer_id, name, currency, timezone, collection_method)"
            " values ('c3', 'Three', 'usd', 'Mars/Olympus', 'invoice')")
    execute("insert into raw.subscriptions (subscription_id, customer_id, plan_id, started_at)"
            " values ('s1-again', 'c1', 'usage_usd', '2026-04-15T00:00:00Z'),"
            " ('s-ghost', 'c1', 'no_plan', '2030-01-01Z')")
    execute("insert into raw.plan_charges (plan_id, event_name, pricing_model)"
            " values ('usage_usd', 'storage_gb', 'volume')")
    execute("insert into raw.plan_charge_tiers (plan_id, event_name, tier, up_to, unit_price)"
            " values ('usage_usd', 'storage_gb', 1, 100, 1), ('usage_usd', 'storage_gb', 2, 50, 1)")
    try:
        with pytest.raises(GateFailed) as failed:
            gates.check_raw_contracts(**WINDOW)
        assert failed_checks(failed) == {
            "customers__columns",  # collection_method not in its accepted values
            "customers__timezone_is_iana_timezone",
            "subscriptions__one_active_subscription_per_customer",
            "subscriptions__plan_id_references_plans",
            "plan_charge_tiers__last_tier_is_unbounded",
            "plan_charge_tiers__tiers_are_ordered",
        }
        message = str(failed.value)
        assert ("check customers__columns: expect_column_values_to_be_in_set(column=collection_method,"
                " value_set=[auto_charge, request_payment]) — 1 of 3 rows, e.g. {customer_id: 'c3'") in message
        assert "{customer_id: 'c1', subscription_id: 's1', overlapping_subscription_id: 's1-again'" in message
        assert "--as-of 2026-06-01T01:00:00+00:00" in message  # how to acknowledge, if it must be
    finally:
        execute("delete from raw.plan_charge_tiers where event_name = 'storage_gb'")
        execute("delete from raw.plan_charges where event_name = 'storage_gb'")
        execute("delete from raw.subscriptions where subscription_id in ('s1-again', 's-ghost')")
        execute("delete from raw.customers where customer_id = 'c3'")


def test_raw_contracts_are_not_checked_again_until_an_enforced_table_changes(scenario):
    one_run = sum(len(check.expectations) for check in raw_contracts_gate().checks)

    def stored() -> int:
        return query("select count(*) from billing.quality_results where gate = 'raw_contracts'")[0][0]

    assert gates.check_raw_contracts(**WINDOW).success
    passed = stored()
    assert gates.check_raw_contracts(**WINDOW).success  # nothing changed since it passed: not checked
    assert stored() == passed

    execute("update raw.customers set name = 'One Inc' where customer_id = 'c1'")
    assert gates.check_raw_contracts(**WINDOW).success
    assert stored() == passed + one_run
    execute("insert into raw.customers (customer_id, name, currency, timezone, collection_method)"
            " values ('c3', 'Three', 'USD', 'UTC', 'invoice')")
    try:
        with pytest.raises(GateFailed) as failed:
            gates.check_raw_contracts(**WINDOW)
        assert failed_checks(failed) == {"customers__columns"}
        with pytest.raises(GateFailed):  # a failure is never remembered as a pass
            gates.check_raw_contracts(**WINDOW)
        assert stored() == passed + 3 * one_run
    finally:
        execute("delete from raw.customers where customer_id = 'c3'")

    execute("drop trigger contract_table_changed on raw.meters")  # a table that does not count its changes
    try:
        assert contract_tables_version() is None
        assert gates.check_raw_contracts(**WINDOW).success
        assert gates.check_raw_contracts(**WINDOW).success
        assert stored() == passed + 5 * one_run
    finally:
        init_warehouse()
    assert contract_tables_version() is not None
    assert gates.check_raw_contracts(**WINDOW).success


def test_draft_gate_stops_drafts_that_do_not_reconcile(scenario, quality_config):
    [(invoice_id,)] = query("select invoice_id from billing_marts.fct_draft_invoices where subscription_id = 's1'")
    execute("update billing_marts.fct_draft_invoice_lines set quantity = quantity + 1 where invoice_id = %s"
            " and kind = 'usage'", invoice_id)
    execute("delete from billing_marts.fct_draft_invoices where subscription_id = 's2'")
    # a row the build never saw, though ingested before the snapshot
    insert_events([("lost", "c1", "api_call", 1, datetime(2026, 5, 9, tzinfo=UTC))],
                  ingested_at=datetime(2026, 5, 9, tzinfo=UTC))
    with pytest.raises(GateFailed) as failed:
        gates.check_draft_invoices(**WINDOW)
    assert failed_checks(failed) == {
        "draft_quantities_match_the_events", "every_active_subscription_has_a_draft", "usage_events_reconcile",
    }
    message = str(failed.value)
    assert ("check every_active_subscription_has_a_draft: expect_table_row_count_to_equal(value=0)"
            " — observed 1") in message
    assert "subscription_id: 's2', period_start: 2026-05-01T00:00:00+00:00" in message
    assert ("check usage_events_reconcile: expect_column_pair_values_to_be_equal(column_A=raw_rows,"
            " column_B=accounted_for)") in message

    execute("delete from raw.usage_events where reference = 'lost'")
    build(MAY_CLOSE)  # the fix: rebuild, as re-running the close does
    assert gates.check_draft_invoices(**WINDOW).success


def test_ledger_gate_stops_double_and_wrong_charges(scenario, quality_config):
    invoices = query("select invoice_id, total_minor from billing.invoices order by invoice_number")
    (first, first_total), (second, second_total) = invoices[:2]
    execute(
        "insert into billing.charge_attempts (idempotency_key, invoice_id, attempt_no, amount_minor, currency,"
        " status, attempted_for) values"
        " ('k1', %s, 1, %s, 'USD', 'succeeded', now()), ('k2', %s, 2, %s, 'USD', 'succeeded', now()),"
        " ('k3', %s, 1, %s, 'USD', 'pending', now())",
        first, first_total, first, first_total, second, second_total + 1,
    )
    try:
        with pytest.raises(GateFailed) as failed:
            gates.check_ledger(**WINDOW)
        assert failed_checks(failed) == {
            "no_invoice_with_two_successful_charges", "charged_amount_equals_invoice_total",
        }
        assert "idempotency_keys: 'k1, k2'" in str(failed.value)
        assert "{idempotency_key: 'k3'" in str(failed.value)
    finally:
        execute("delete from billing.charge_attempts")
    assert gates.check_ledger(**WINDOW).success


def test_the_periods_awaiting_an_invoice_are_an_anti_join_the_planner_estimates(scenario):
    """The gates and the drafts read the periods without an invoice. As a left join filtered on a
    null invoice_id, the planner estimated them at 1 row however many there were, and planned
    nested loops on them: the volume check and fct_draft_invoices took minutes at 100,000
    subscriptions with history (bench/README.md, finding 14). As NOT EXISTS it is an anti-join,
    estimated from the data."""
    plan = [line for (line,) in query(
        "explain select * from billing_intermediate.int_subscription_periods__awaiting_invoice")]

    assert any("Anti Join" in line for line in plan), "\n".join(plan)


def test_closing_events_gate_stops_a_broken_producer_unless_acknowledged(scenario, quality_config):
    # May as a broken producer sends it: 2 of 40 calls, one absurd value, and a flood of junk.
    execute("delete from raw.usage_events"
            " where reference like 'may-%%' and reference not in ('may-c1-5-0', 'may-c2-5-0')")
    insert_events([("may-huge", "c1", "api_call", 5_000, datetime(2026, 5, 20, tzinfo=UTC))])
    insert_events([(f"junk-{index}", "c1", "API-CALL", 1, datetime(2026, 5, 21, tzinfo=UTC))
                   for index in range(10)])
    transform.build(transform.EVENTS_SLICE, **WINDOW)

    with pytest.raises(GateFailed) as failed:
        gates.check_closing_events(**WINDOW)
    assert failed_checks(failed) == {
        "values_are_in_range", "reject_rate_is_below_threshold", "volume_is_within_band_of_recent_periods",
    }
    message = str(failed.value)
    assert ("{reference: 'may-huge', event_name: 'api_call', aggregation: 'sum', value: 5000,"
            " min_value: 0, max_value: 1000}") in message
    assert "count_events: 13, count_rejected: 10, reject_rate: 0.7692, max_reject_rate: 0.2" in message
    assert "event_name: 'api_call', closing_events: 3, history_events: 80" in message

    # The operator knows: acknowledged for this window, it passes, recorded as acknowledged.
    for check in ("values_are_in_range", "reject_rate_is_below_threshold", "volume_is_within_band_of_recent_periods"):
        acknowledge(gate="closing_events", check_name=check, as_of=datetime.fromisoformat(MAY_CLOSE),
                    reason="producer outage INC-42, backfill follows", by="ops@example.com")
    result = gates.check_closing_events(**WINDOW)
    assert result.success and {failure.check for failure in result.acknowledged} == {
        "values_are_in_range", "reject_rate_is_below_threshold", "volume_is_within_band_of_recent_periods",
    }
    assert query(
        "select distinct check_name from billing.quality_results where run_label = %s and acknowledged"
        " and checked_at > now() - interval '1 minute' order by 1", f"as_of={MAY_CLOSE}",
    ) == [("reject_rate_is_below_threshold",), ("values_are_in_range",), ("volume_is_within_band_of_recent_periods",)]

    # … for that window only: an hour later it is judged again.
    later = {**WINDOW, "as_of": (datetime.fromisoformat(MAY_CLOSE) + timedelta(hours=1)).isoformat()}
    with pytest.raises(GateFailed):
        gates.check_closing_events(**later)

    # Thresholds are configuration: widen them and the same data passes without acknowledgement.
    quality_config.write_text(
        "closing_events:\n  max_reject_rate: 0.9\n  volume: {min_ratio: 0.01}\n"
        "  meters: {api_call: {max_value: null}}\n")
    assert gates.check_closing_events(**later).success
