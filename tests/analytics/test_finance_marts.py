"""The finance marts (SPEC §11) on a small closed month, every figure computed by hand.

June 2026 on the `pro` plan ($10 a month, $0.01 a call) and a yen plan, one customer each way an
invoice can go: paid by card after $5 of credit, declined and retried into dunning then given up,
voided, owed on 15-day terms, paid in JPY. The marts are views: built once, they read the system
of record as it moves (the tests run in order and build on each other's state).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from billing import transform
from billing.bookkeeping import backfill as backfill_ledger
from billing.bookkeeping import post_issued
from billing.catalog import apply_catalog
from billing.invoice_admin import void_invoice
from billing.loading import load_events
from billing.payments.retries import retry_failed_charges
from billing.payments.sandbox import SandboxGateway
from billing.quality.billing_gates import check_ledger
from billing.warehouse import connect
from conftest import query, reset_warehouse, run_dag
from spine.catalogs import PRO_PLAN
from spine.events import usage, write_csv

pytestmark = pytest.mark.slow

CATALOG = PRO_PLAN + """
  - plan_id: yen
    name: Yen
    currency: JPY
    interval: month
    base_fee: 980
    charges:
      - {event_name: api_call, pricing_model: per_unit, unit_price: 0.5}
customers:
  - {customer_id: paid_co, name: Paid Co, currency: USD, collection_method: auto_charge,
     payment_method_id: pm_card_visa}
  - {customer_id: declined_co, name: Declined Co, currency: USD, collection_method: auto_charge,
     payment_method_id: pm_card_chargeDeclined}
  - {customer_id: void_co, name: Void Co, currency: USD, collection_method: request_payment}
  - {customer_id: owed_co, name: Owed Co, currency: USD, collection_method: request_payment, net_terms_days: 15}
  - {customer_id: yen_co, name: Yen Co, currency: JPY, collection_method: auto_charge,
     payment_method_id: pm_card_visa}
subscriptions:
  - {subscription_id: s_declined, customer_id: declined_co, plan_id: pro, started_at: "2026-06-01T00:00:00Z"}
  - {subscription_id: s_owed, customer_id: owed_co, plan_id: pro, started_at: "2026-06-01T00:00:00Z"}
  - {subscription_id: s_paid, customer_id: paid_co, plan_id: pro, started_at: "2026-06-01T00:00:00Z"}
  - {subscription_id: s_void, customer_id: void_co, plan_id: pro, started_at: "2026-06-01T00:00:00Z"}
  - {subscription_id: s_yen, customer_id: yen_co, plan_id: yen, started_at: "2026-06-01T00:00:00Z"}
credit_grants:
  - {grant_id: welcome, customer_id: paid_co, currency: USD, amount: 5, granted_at: "2026-06-01T00:00:00Z"}
"""
JUNE_CLOSE = "2026-07-01T01:00:00Z"
FINANCE_MARTS = ("fct_invoices", "fct_invoice_lines", "fct_payments", "fct_payment_success_monthly", "fct_dunning",
                 "fct_receivables_aging", "fct_revenue", "fct_general_ledger", "fct_trial_balance")
JUNE = date(2026, 6, 1)
JULY = date(2026, 7, 1)


def mart(sql: str, *params) -> list[tuple]:
    """`sql` with `{mart}` names resolved to the relations dbt built them in."""
    return query(sql.format(**{name: transform.ref(name) for name in FINANCE_MARTS}), *params)


def days_since(day: date) -> int:
    """Days from `day` to today (UTC: every customer here is on UTC)."""
    return (datetime.now(UTC).date() - day).days


@pytest.fixture(scope="module")
def june_closed(warehouse, tmp_path_factory):
    folder: Path = tmp_path_factory.mktemp("finance")
    reset_warehouse()
    (folder / "catalog.yaml").write_text(CATALOG)
    apply_catalog(folder / "catalog.yaml")
    events = (
        usage("paid_co", "api_call", [1_234], "2026-06-05", "p")
        + usage("declined_co", "api_call", [100], "2026-06-05", "d")
        + usage("owed_co", "api_call", [500], "2026-06-05", "o")
        + usage("yen_co", "api_call", [3], "2026-06-05", "y")
    )
    load_events(write_csv(folder / "events.csv", events), show_progress=False)
    run_dag("billing_cycle_close", JUNE_CLOSE, as_of=JUNE_CLOSE)
    void_invoice("INV-000004", reason="sold by mistake")
    retry_failed_charges(SandboxGateway(), now=datetime(2026, 7, 2, 2, tzinfo=UTC))  # declined again
    # the views read billing.* live; the build only creates them (and runs their data tests)
    transform.build(("fqn:marts.finance",), as_of=JUNE_CLOSE, grace="1 hour")


def test_invoices_carry_amounts_in_minor_and_major_units_and_what_is_owed(june_closed):
    assert mart(
        "select invoice_number, customer_name, plan_id, currency, status, service_month, invoice_date, due_at,"
        " subtotal_minor, subtotal_major, credits_minor, total_minor, total_major, amount_paid_minor,"
        " amount_remaining_minor, amount_remaining_major, paid_at is not null, days_past_due"
        " from {fct_invoices} order by invoice_number"
    ) == [
        # $10 + 100 calls; two declines: owed since it was due on July 1
        ("INV-000001", "Declined Co", "pro", "USD", "payment_failed", JUNE, JULY, datetime(2026, 7, 1, tzinfo=UTC),
         1_100, Decimal("11"), 0, 1_100, Decimal("11"), 0, 1_100, Decimal("11"), False, days_since(JULY)),
        # $10 + 500 calls, due 15 days after July 1
        ("INV-000002", "Owed Co", "pro", "USD", "open", JUNE, JULY, datetime(2026, 7, 16, tzinfo=UTC),
         1_500, Decimal("15"), 0, 1_500, Decimal("15"), 0, 1_500, Decimal("15"), False, days_since(date(2026, 7, 16))),
        # $10 + 1,234 calls less $5 of credit, charged and paid
        ("INV-000003", "Paid Co", "pro", "USD", "paid", JUNE, JULY, datetime(2026, 7, 1, tzinfo=UTC),
         2_234, Decimal("22.34"), 500, 1_734, Decimal("17.34"), 1_734, 0, Decimal("0"), True, 0),
        # voided: nothing owed
        ("INV-000004", "Void Co", "pro", "USD", "void", JUNE, JULY, datetime(2026, 7, 1, tzinfo=UTC),
         1_000, Decimal("10"), 0, 1_000, Decimal("10"), 0, 0, Decimal("0"), False, 0),
        # ¥980 + 3 × ¥0.5 = ¥1.5 → ¥2: JPY has no minor unit
        ("INV-000005", "Yen Co", "yen", "JPY", "paid", JUNE, JULY, datetime(2026, 7, 1, tzinfo=UTC),
         982, Decimal("982"), 0, 982, Decimal("982"), 982, 0, Decimal("0"), True, 0),
    ]


def test_invoice_lines_name_meter_kind_and_service_month(june_closed):
    assert mart(
        "select line_no, kind, event_name, invoice_status, service_month, quantity, amount_minor, amount_major"
        " from {fct_invoice_lines} where invoice_number = 'INV-000003' order by line_no"
    ) == [
        (1, "base_fee", None, "paid", JUNE, Decimal("1"), 1_000, Decimal("10")),
        (2, "usage", "api_call", "paid", JUNE, Decimal("1234"), 1_234, Decimal("12.34")),
        (3, "credit", None, "paid", JUNE, None, -500, Decimal("-5")),
    ]


def test_payments_list_every_attempt_with_its_outcome(june_closed):
    assert mart(
        "select invoice_number, attempt_no, is_first_attempt, outcome, failure_code, amount_minor, amount_major,"
        " currency, attempted_for, attempt_month, resolved_at is not null"
        " from {fct_payments} order by invoice_number, attempt_no"
    ) == [
        ("INV-000001", 1, True, "failed", "card_declined", 1_100, Decimal("11"), "USD",
         datetime(2026, 7, 1, 1, tzinfo=UTC), JULY, True),
        ("INV-000001", 2, False, "failed", "card_declined", 1_100, Decimal("11"), "USD",
         datetime(2026, 7, 2, 2, tzinfo=UTC), JULY, True),
        ("INV-000003", 1, True, "succeeded", None, 1_734, Decimal("17.34"), "USD",
         datetime(2026, 7, 1, 1, tzinfo=UTC), JULY, True),
        ("INV-000005", 1, True, "succeeded", None, 982, Decimal("982"), "JPY",
         datetime(2026, 7, 1, 1, tzinfo=UTC), JULY, True),
    ]
    # USD: 1 of 3 attempts succeeded, 1 of 2 first attempts
    assert mart(
        "select attempt_month, currency, count_attempts, count_succeeded, count_failed, count_first_attempts,"
        " count_first_attempts_succeeded, round(success_rate, 4), first_attempt_success_rate"
        " from {fct_payment_success_monthly} order by 1, 2"
    ) == [
        (JULY, "JPY", 1, 1, 0, 1, 1, Decimal("1"), Decimal("1")),
        (JULY, "USD", 3, 1, 2, 2, 1, Decimal("0.3333"), Decimal("0.5")),
    ]


def test_dunning_shows_the_retry_run_s_schedule(june_closed):
    # attempt 2 failed on July 2 at 02:00: the next one from July 3 (UTC day), given up 72 hours later
    assert mart(
        "select invoice_number, status, amount_remaining_minor, attempts_made, attempts_left, last_failure_code,"
        " next_attempt_from, gives_up_at from {fct_dunning}"
    ) == [
        ("INV-000001", "payment_failed", 1_100, 2, 1, "card_declined",
         datetime(2026, 7, 3, tzinfo=UTC), datetime(2026, 7, 5, 2, tzinfo=UTC)),
    ]


def test_revenue_is_the_lines_of_invoices_not_void_with_credits_beside_it(june_closed):
    assert mart(
        "select currency, plan_id, customer_id, event_name, revenue_minor, revenue_major, credits_applied_minor,"
        " credits_applied_major from {fct_revenue} where service_month = %s order by 1, 2, 3, 4 nulls first",
        JUNE,
    ) == [
        ("JPY", "yen", "yen_co", None, 980, Decimal("980"), 0, Decimal("0")),
        ("JPY", "yen", "yen_co", "api_call", 2, Decimal("2"), 0, Decimal("0")),
        ("USD", "pro", "declined_co", None, 1_000, Decimal("10"), 0, Decimal("0")),
        ("USD", "pro", "declined_co", "api_call", 100, Decimal("1"), 0, Decimal("0")),
        ("USD", "pro", "owed_co", None, 1_000, Decimal("10"), 0, Decimal("0")),
        ("USD", "pro", "owed_co", "api_call", 500, Decimal("5"), 0, Decimal("0")),
        # the $5 credit pays part of the invoice; revenue is the $22.34 billed
        ("USD", "pro", "paid_co", None, 1_000, Decimal("10"), 500, Decimal("5")),
        ("USD", "pro", "paid_co", "api_call", 1_234, Decimal("12.34"), 0, Decimal("0")),
    ]


def test_receivables_age_by_days_past_due_at_each_month_end(june_closed):
    # Owed Co, due July 16: 15, 46, 76, then 107 days past due at the ends of July to October
    assert mart(
        "select invoice_number, as_of_date, status_as_of, days_past_due, aging_bucket, amount_remaining_minor"
        " from {fct_receivables_aging} where not is_current and as_of_date <= '2026-10-31' order by 1, 2"
    ) == [
        ("INV-000001", date(2026, 7, 31), "payment_failed", 30, "1-30", 1_100),
        ("INV-000001", date(2026, 8, 31), "payment_failed", 61, "61-90", 1_100),
        ("INV-000001", date(2026, 9, 30), "payment_failed", 91, "91+", 1_100),
        ("INV-000001", date(2026, 10, 31), "payment_failed", 122, "91+", 1_100),
        ("INV-000002", date(2026, 7, 31), "open", 15, "1-30", 1_500),
        ("INV-000002", date(2026, 8, 31), "open", 46, "31-60", 1_500),
        ("INV-000002", date(2026, 9, 30), "open", 76, "61-90", 1_500),
        ("INV-000002", date(2026, 10, 31), "open", 107, "91+", 1_500),
    ]
    assert mart(
        "select invoice_number, as_of_date, days_past_due, amount_remaining_minor"
        " from {fct_receivables_aging} where is_current order by 1"
    ) == [
        ("INV-000001", datetime.now(UTC).date(), days_since(JULY), 1_100),
        ("INV-000002", datetime.now(UTC).date(), days_since(date(2026, 7, 16)), 1_500),
    ]


def test_the_ledger_posts_every_money_event_and_balances(june_closed):
    assert mart(
        "select invoice_number, entry_kind, account, account_type, debit_minor, credit_minor, currency"
        " from {fct_general_ledger} order by invoice_number, posted_at, entry_kind, line_no"
    ) == [
        ("INV-000001", "invoice_issued", "accounts_receivable", "asset", 1_100, 0, "USD"),
        ("INV-000001", "invoice_issued", "revenue:subscription", "revenue", 0, 1_000, "USD"),
        ("INV-000001", "invoice_issued", "revenue:usage", "revenue", 0, 100, "USD"),
        ("INV-000002", "invoice_issued", "accounts_receivable", "asset", 1_500, 0, "USD"),
        ("INV-000002", "invoice_issued", "revenue:subscription", "revenue", 0, 1_000, "USD"),
        ("INV-000002", "invoice_issued", "revenue:usage", "revenue", 0, 500, "USD"),
        # the application's $5 grant: a promotion, an expense once spent
        ("INV-000003", "credits_applied", "promotional_credit", "expense", 500, 0, "USD"),
        ("INV-000003", "credits_applied", "accounts_receivable", "asset", 0, 500, "USD"),
        ("INV-000003", "invoice_issued", "accounts_receivable", "asset", 2_234, 0, "USD"),
        ("INV-000003", "invoice_issued", "revenue:subscription", "revenue", 0, 1_000, "USD"),
        ("INV-000003", "invoice_issued", "revenue:usage", "revenue", 0, 1_234, "USD"),
        ("INV-000003", "payment_succeeded", "cash", "asset", 1_734, 0, "USD"),
        ("INV-000003", "payment_succeeded", "accounts_receivable", "asset", 0, 1_734, "USD"),
        # Void Co used nothing: its usage line of 0 posts nothing; the void takes the sale back
        ("INV-000004", "invoice_issued", "accounts_receivable", "asset", 1_000, 0, "USD"),
        ("INV-000004", "invoice_issued", "revenue:subscription", "revenue", 0, 1_000, "USD"),
        ("INV-000004", "void", "revenue:subscription", "revenue", 1_000, 0, "USD"),
        ("INV-000004", "void", "accounts_receivable", "asset", 0, 1_000, "USD"),
        ("INV-000005", "invoice_issued", "accounts_receivable", "asset", 982, 0, "JPY"),
        ("INV-000005", "invoice_issued", "revenue:subscription", "revenue", 0, 980, "JPY"),
        ("INV-000005", "invoice_issued", "revenue:usage", "revenue", 0, 2, "JPY"),
        ("INV-000005", "payment_succeeded", "cash", "asset", 982, 0, "JPY"),
        ("INV-000005", "payment_succeeded", "accounts_receivable", "asset", 0, 982, "JPY"),
    ]
    # receivable: INV-000001's 11.00 and INV-000002's 15.00, what remains to pay on them
    assert mart(
        "select distinct on (account, currency) account, currency, balance_minor, balance_major"
        " from {fct_trial_balance} order by account, currency, posted_month desc"
    ) == [
        ("accounts_receivable", "JPY", 0, Decimal("0")),
        ("accounts_receivable", "USD", 2_600, Decimal("26.00")),
        ("cash", "JPY", 982, Decimal("982")),
        ("cash", "USD", 1_734, Decimal("17.34")),
        ("promotional_credit", "USD", 500, Decimal("5.00")),
        ("revenue:subscription", "JPY", -980, Decimal("-980")),
        ("revenue:subscription", "USD", -3_000, Decimal("-30.00")),
        ("revenue:usage", "JPY", -2, Decimal("-2")),
        ("revenue:usage", "USD", -1_834, Decimal("-18.34")),
    ]
    assert mart("select currency, sum(debits_minor), sum(credits_minor) from {fct_trial_balance} group by 1"
                " order by 1") == [("JPY", 1_964, 1_964), ("USD", 9_068, 9_068)]
    # issuing again, or init's backfill, posts nothing twice
    with connect() as connection:
        invoice_ids = [invoice_id for (invoice_id,) in connection.execute("select invoice_id from billing.invoices")]
        assert post_issued(connection, invoice_ids) == 0
        assert backfill_ledger(connection) == 0


def test_the_marts_outlive_a_rebuild_of_the_staging_views_under_them(june_closed):
    # dbt replaces a view by dropping it with CASCADE: the hourly usage update re-creates the marts
    transform.update_usage(as_of="2026-07-02T03:00:00Z", grace="1 hour")
    assert mart("select count(*) from {fct_invoices}") == [(5,)]


def test_a_given_up_invoice_leaves_dunning_and_is_written_off(june_closed):
    retry_failed_charges(SandboxGateway(), now=datetime(2026, 7, 3, 2, tzinfo=UTC))  # third decline
    assert mart("select count(*) from {fct_dunning}") == [(0,)]
    assert mart(
        "select status, amount_remaining_minor, days_past_due from {fct_invoices} where invoice_number = 'INV-000001'"
    ) == [("uncollectible", 1_100, 0)]
    # given up on July 3, written off at every date aged since
    assert mart(
        "select distinct status_as_of, aging_bucket, written_off_at from {fct_receivables_aging}"
        " where invoice_number = 'INV-000001'"
    ) == [("uncollectible", "written_off", datetime(2026, 7, 3, 2, tzinfo=UTC))]
    # written off: what remained, from the receivable to bad debt, once however often the run is repeated
    retry_failed_charges(SandboxGateway(), now=datetime(2026, 7, 3, 2, tzinfo=UTC))
    assert mart(
        "select entry_kind, account, debit_minor, credit_minor from {fct_general_ledger}"
        " where invoice_number = 'INV-000001' and entry_kind = 'write_off' order by line_no"
    ) == [("write_off", "bad_debt", 1_100, 0), ("write_off", "accounts_receivable", 0, 1_100)]
    # then voided: the sale is taken back, from bad debt, on the accounts it was booked to
    void_invoice("INV-000001", reason="never delivered")
    assert mart(
        "select account, debit_minor, credit_minor from {fct_general_ledger}"
        " where invoice_number = 'INV-000001' and entry_kind = 'void' order by line_no"
    ) == [("revenue:subscription", 1_000, 0), ("revenue:usage", 100, 0), ("bad_debt", 0, 1_100)]
    # every data test (the reconciliations and the trial balance among them) holds on this warehouse
    # too, and so does the ledger gate: paid, void, written off then void, open: every receivable as it remains
    transform.build(("fqn:marts.finance",), as_of=JUNE_CLOSE, grace="1 hour")
    assert check_ledger(as_of="2026-07-03T02:00:00Z").success
