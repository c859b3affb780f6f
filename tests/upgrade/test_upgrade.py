"""`billing init` upgrades a warehouse made by an earlier main without losing anything.

`warehouse_at_6993324.sql` is `pg_dump --inserts -n raw -n billing` of a warehouse made by main at
6993324 (`billing init`, a catalog, two events, `billing close-cycles --as-of
2026-03-01T02:00:00Z`): two invoices issued at 2026-12-03 20:27:30 UTC, one charge. It is restored
into a database of its own on the session's server, upgraded by the `billing init` command, and
compared with what it held. Two credit grants are added to its raw.credit_grants first: one the
application made and one that issuing made back then (`carry_<invoice_id>`), which init moves to
billing.credit_grants. Its raw.usage_events was one table: init partitions it by month of
ingestion (billing.raw_events), its rows numbered in the order they were loaded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

DUMP = Path(__file__).with_name("warehouse_at_6993324.sql")
DATABASE = "billing_upgrade_from_6993324"
KEPT = {
    "invoices": "select invoice_id, invoice_number, customer_id, subscription_id, period_start, period_end,"
                " currency, subtotal_minor, credits_minor, total_minor, status, issued_at"
                " from billing.invoices order by invoice_number",
    "invoice_lines": "select invoice_id, line_no, kind, event_name, description, quantity, included_units,"
                     " amount_minor, detail from billing.invoice_lines order by invoice_id, line_no",
    "charge_attempts": "select * from billing.charge_attempts order by idempotency_key",
    "webhook_events": "select * from billing.webhook_events order by event_id",
    "customers": "select customer_id, name, email, currency, timezone, collection_method, payment_method_id,"
                 " created_at from raw.customers order by customer_id",
    "usage_events": "select reference, customer_id, event_name, value, properties, action, occurred_at, ingested_at"
                    " from raw.usage_events order by reference",
    "credit_applications": "select * from billing.credit_applications order by grant_id, invoice_id",
}
# grant_id, customer_id, currency, amount, granted_at, expires_at
APPLICATION_GRANT = ("welcome", "utc_co", "USD", Decimal("5"), datetime(2026, 1, 15, tzinfo=UTC), None)
# INV-000001's credit beyond its charges, as issuing wrote it into raw
CARRIED_GRANT = ("carry_in_6460bd27f6ac85edd8ee3286", "tokyo_co", "USD", Decimal("2.50"),
                 datetime(2026, 2, 28, 15, tzinfo=UTC), None)
# loaded after the dump's two events (t1, u1): by the old pipeline's order (ctid, then load order), b
# before a though they share ingested_at; y without occurred_at (dbt rejects it), z with a properties
# array that the table's later JSON-object check never validated
LAST_OF_JANUARY = datetime(2026, 1, 31, 23, 59, tzinfo=UTC)
FIRST_OF_FEBRUARY = datetime(2026, 2, 1, tzinfo=UTC)
LATE_EVENTS = [
    ("b", "utc_co", "api_call", 1, None, None, datetime(2026, 1, 31, 23, tzinfo=UTC), LAST_OF_JANUARY),
    ("a", "utc_co", "api_call", 1, None, None, datetime(2026, 1, 31, 22, tzinfo=UTC), LAST_OF_JANUARY),
    ("y", "utc_co", "api_call", 1, None, None, None, FIRST_OF_FEBRUARY),
    ("z", "utc_co", "api_call", 1, "[1]", None, FIRST_OF_FEBRUARY, FIRST_OF_FEBRUARY),
]
# a delivery still pending in the old warehouse, of its first event (created 2026-12-03 20:27:30.462673)
PENDING_DELIVERY = ("msg_910e3bef32b9356c4e66a7033494954b", "ep_old")
# Invoices in states the old warehouse's two lack, as its code wrote them: given up after three
# declines, with $2 of the welcome grant applied, and voided; each state change with its webhook event.
ISSUED = "2026-12-03 21:00:00+00"
GIVEN_UP_AT = datetime(2026, 12, 6, 2, tzinfo=UTC)
VOIDED_AT = datetime(2026, 12, 7, 9, tzinfo=UTC)
OLD_INVOICES = {
    "billing.invoices": [
        ("in_given_up", "INV-000003", "utc_co", "s_utc", "2026-03-01", "2026-04-01", "USD", 1500, 200, 1300,
         "uncollectible", ISSUED),
        ("in_voided", "INV-000004", "utc_co", "s_utc", "2026-04-01", "2026-05-01", "USD", 1000, 0, 1000, "void",
         ISSUED),
    ],
    "billing.invoice_lines": [
        ("in_given_up", 1, "base_fee", None, "Pro base fee", 1, None, 1000, None),
        ("in_given_up", 2, "usage", "api_call", "API calls", 500, 0, 500, None),
        ("in_given_up", 3, "credit", None, "Credits applied", None, None, -200, None),
        ("in_voided", 1, "base_fee", None, "Pro base fee", 1, None, 1000, None),
    ],
    "billing.credit_applications": [("welcome", "in_given_up", 200, "USD", ISSUED)],
    "billing.charge_attempts": [
        (f"ch_given_up_{attempt_no}", "in_given_up", attempt_no, "pm_card_chargeDeclined", 1300, "USD", "failed",
         "card_declined", None, f"2026-12-0{3 + attempt_no} 02:00:00+00", ISSUED, ISSUED)
        for attempt_no in (1, 2, 3)
    ],
    "billing.webhook_events": [
        ("msg_given_up", "billing.invoice.uncollectible", "in_given_up", GIVEN_UP_AT, "{}", None),
        ("msg_voided", "billing.invoice.voided", "in_voided", VOIDED_AT, "{}", None),
    ],
}
PAID_AT = datetime(2026, 12, 3, 20, 27, 31, 103932, tzinfo=UTC)
ISSUED_AT = datetime(2026, 12, 3, 20, 27, 30, 462673, tzinfo=UTC)
ISSUED_LATER_AT = datetime(2026, 12, 3, 21, tzinfo=UTC)
# a grant's balance in cents: its amount less what it has given (billing.credit_applications)
BALANCES = """
select grants.grant_id, grants.amount * 100 - coalesce(sum(applications.amount_minor), 0)
from {grants} as grants
left join billing.credit_applications as applications using (grant_id)
group by grants.grant_id, grants.amount
order by 1
"""


@pytest.fixture
def old_warehouse(warehouse: str) -> str:
    """A database holding the old warehouse; dropped afterwards."""
    server = warehouse.rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f"drop database if exists {DATABASE}")
        admin.execute(f"create database {DATABASE}")
    url = f"{server}/{DATABASE}"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(DUMP.read_text())
    yield url
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f"drop database {DATABASE} with (force)")


def _read(url: str) -> dict[str, list[tuple]]:
    with psycopg.connect(url) as connection:
        return {name: connection.execute(sql).fetchall() for name, sql in KEPT.items()}


def _init(url: str) -> None:
    init = subprocess.run(
        [str(Path(sys.executable).with_name("billing")), "init"], capture_output=True, text=True,
        env={**os.environ, "BILLING_WAREHOUSE_URL": url}, timeout=300,
    )
    assert init.returncode == 0, init.stderr


def test_billing_init_upgrades_a_warehouse_made_by_the_previous_main(old_warehouse: str) -> None:
    with psycopg.connect(old_warehouse) as connection:
        connection.cursor().executemany(
            "insert into raw.credit_grants values (%s, %s, %s, %s, %s, %s)", [APPLICATION_GRANT, CARRIED_GRANT])
        for table, rows in OLD_INVOICES.items():
            connection.cursor().executemany(
                f"insert into {table} values ({', '.join(['%s'] * len(rows[0]))})", rows)
        connection.execute("insert into billing.webhook_deliveries (event_id, endpoint_id) values (%s, %s)",
                           PENDING_DELIVERY)
        connection.cursor().executemany("insert into raw.usage_events values (%s, %s, %s, %s, %s, %s, %s, %s)",
                                        LATE_EVENTS)
        connection.execute("grant select on raw.usage_events to public")
        balances = connection.execute(BALANCES.format(grants="raw.credit_grants")).fetchall()
    before = _read(old_warehouse)
    assert [row[1] for row in before["invoices"]] == ["INV-000001", "INV-000002", "INV-000003", "INV-000004"]
    assert balances == [(CARRIED_GRANT[0], 250), ("welcome", 300)]

    _init(old_warehouse)
    _init(old_warehouse)  # again: nothing moves twice

    assert _read(old_warehouse) == before
    with psycopg.connect(old_warehouse) as connection:
        connection.execute("set timezone = 'UTC'")
        # issued at 20:27 UTC on Dec 3: Dec 4 in Tokyo; due at once (no net terms), at local midnight
        assert connection.execute(
            "select invoice_number, invoice_date::text, due_at, issued_by_run, issued_in_backfill"
            " from billing.invoices where invoice_number <= 'INV-000002' order by invoice_number"
        ).fetchall() == [
            ("INV-000001", "2026-12-04", datetime(2026, 12, 3, 15, tzinfo=UTC), None, False),
            ("INV-000002", "2026-12-03", datetime(2026, 12, 3, tzinfo=UTC), None, False),
        ]
        assert connection.execute(
            "select customer_id, net_terms_days from raw.customers order by 1"
        ).fetchall() == [("tokyo_co", 0), ("utc_co", 0)]
        assert connection.execute("select count(*) from billing.runs").fetchone() == (0,)
        # SPEC §12: old invoices had no discount, minimum or tax, and all their lines add to the total;
        # the line kinds' check, which `create table if not exists` kept, now takes the new kinds
        assert connection.execute(
            "select discount_minor, minimum_minor, tax_minor, tax_inclusive_minor, reverse_charge"
            " from billing.invoices order by invoice_number"
        ).fetchall() == [(0, 0, 0, 0, False)] * len(before["invoices"])
        assert connection.execute(
            "select bool_and(adds_to_total), count(*) from billing.invoice_lines"
        ).fetchone() == (True, len(before["invoice_lines"]))
        with connection.transaction(force_rollback=True):
            connection.execute(
                "insert into billing.invoice_lines (invoice_id, line_no, kind, description, amount_minor)"
                " select invoice_id, 100 + row_number() over (), kind, kind, 0 from billing.invoices"
                " cross join unnest(array['discount', 'minimum_commitment', 'tax']) as kind"
            )
        with pytest.raises(psycopg.errors.CheckViolation), connection.transaction():
            connection.execute(
                "insert into billing.invoice_lines (invoice_id, line_no, kind, description, amount_minor)"
                " select invoice_id, 200, 'rebate', 'rebate', 0 from billing.invoices limit 1"
            )
        # events loaded before must meet it no more than they did; new ones must
        assert connection.execute(
            "select convalidated from pg_constraint where conname = 'usage_events__properties_is_a_json_object'"
            " and conrelid = 'raw.usage_events'::regclass"
        ).fetchall() == [(False,)]
        # partitioned by month of ingestion; numbered in the old order; the next row numbered after them
        assert connection.execute(
            "select tableoid::regclass::text, reference, raw_row_id from raw.usage_events order by raw_row_id"
        ).fetchall() == [
            ("raw.usage_events_2026_12", "t1", 1), ("raw.usage_events_2026_12", "u1", 2),
            ("raw.usage_events_2026_01", "b", 3), ("raw.usage_events_2026_01", "a", 4),
            ("raw.usage_events_2026_02", "y", 5), ("raw.usage_events_2026_02", "z", 6),
        ]
        assert connection.execute(
            "insert into raw.usage_events (reference) values ('new') returning raw_row_id"
        ).fetchone() == (7,)
        assert connection.execute(
            "select relkind, to_regclass('raw.usage_events_unpartitioned'),"
            " has_table_privilege('public', 'raw.usage_events', 'select')"
            " from pg_class where oid = 'raw.usage_events'::regclass"
        ).fetchone() == ("p", None, True)
        # the rewrite trigger watches every partition (the dump's counter had never moved)
        connection.execute("delete from raw.usage_events_2026_01 where reference = 'a'")
        assert connection.execute("select is_called, last_value from raw.usage_events_rewrites").fetchone() == (True, 1)
        assert connection.execute("select * from billing.charge_retry_policy").fetchall() == [
            (3, timedelta(days=1), timedelta(hours=72)),
        ]
        # its one attempt succeeded: nothing for the retry schedule (INV-000003's three are spent)
        assert connection.execute(
            "select invoice_id, attempts_left from billing.charge_collection_schedule").fetchall() == [
            ("in_given_up", 0)]
        assert connection.execute("select * from raw.credit_grants").fetchall() == [APPLICATION_GRANT]
        # its endpoint gets it in the order of its event's creation (the dispatcher's claim index)
        assert connection.execute(
            "select event_id, endpoint_id, status, event_created_at from billing.webhook_deliveries"
        ).fetchall() == [(*PENDING_DELIVERY, "pending", datetime(2026, 12, 3, 20, 27, 30, 462673, tzinfo=UTC))]
        assert connection.execute(
            "select grant_id, origin_invoice_id, customer_id, currency, amount, granted_at from billing.credit_grants"
        ).fetchall() == [(CARRIED_GRANT[0], "in_6460bd27f6ac85edd8ee3286", *CARRIED_GRANT[1:5])]
        assert connection.execute(
            BALANCES.format(grants="(select grant_id, amount from raw.credit_grants"
                                   " union all select grant_id, amount from billing.credit_grants)")
        ).fetchall() == balances
        # the ledger of every invoice, posted once (init ran twice), each event at its time
        assert connection.execute(
            "select invoices.invoice_number, entries.kind, entries.posted_at, lines.account, lines.debit_minor,"
            " lines.credit_minor from billing.journal_entries as entries"
            " join billing.journal_lines as lines using (entry_id) join billing.invoices using (invoice_id)"
            " order by 1, 3, 2, lines.line_no"
        ).fetchall() == [
            ("INV-000001", "invoice_issued", ISSUED_AT, "accounts_receivable", 1200, 0),
            ("INV-000001", "invoice_issued", ISSUED_AT, "revenue:subscription", 0, 1000),
            ("INV-000001", "invoice_issued", ISSUED_AT, "revenue:usage", 0, 200),
            ("INV-000001", "payment_succeeded", PAID_AT, "cash", 1200, 0),
            ("INV-000001", "payment_succeeded", PAID_AT, "accounts_receivable", 0, 1200),
            ("INV-000002", "invoice_issued", ISSUED_AT, "accounts_receivable", 1500, 0),
            ("INV-000002", "invoice_issued", ISSUED_AT, "revenue:subscription", 0, 1000),
            ("INV-000002", "invoice_issued", ISSUED_AT, "revenue:usage", 0, 500),
            ("INV-000003", "credits_applied", ISSUED_LATER_AT, "promotional_credit", 200, 0),
            ("INV-000003", "credits_applied", ISSUED_LATER_AT, "accounts_receivable", 0, 200),
            ("INV-000003", "invoice_issued", ISSUED_LATER_AT, "accounts_receivable", 1500, 0),
            ("INV-000003", "invoice_issued", ISSUED_LATER_AT, "revenue:subscription", 0, 1000),
            ("INV-000003", "invoice_issued", ISSUED_LATER_AT, "revenue:usage", 0, 500),
            ("INV-000003", "write_off", GIVEN_UP_AT, "bad_debt", 1300, 0),
            ("INV-000003", "write_off", GIVEN_UP_AT, "accounts_receivable", 0, 1300),
            ("INV-000004", "invoice_issued", ISSUED_LATER_AT, "accounts_receivable", 1000, 0),
            ("INV-000004", "invoice_issued", ISSUED_LATER_AT, "revenue:subscription", 0, 1000),
            ("INV-000004", "void", VOIDED_AT, "revenue:subscription", 1000, 0),
            ("INV-000004", "void", VOIDED_AT, "accounts_receivable", 0, 1000),
        ]
        # what each invoice's receivable holds is what remains to pay on it: INV-000002's total
        assert connection.execute(
            "select balances.invoice_id, balances.amount_remaining_minor,"
            " (select sum(debit_minor - credit_minor) from billing.journal_lines join billing.journal_entries"
            "  using (entry_id) where invoice_id = balances.invoice_id and account = 'accounts_receivable')"
            " from billing.invoice_balances as balances order by 1"
        ).fetchall() == [("in_6460bd27f6ac85edd8ee3286", 0, 0), ("in_82e75521f46b8e0044e8df13", 1500, 1500),
                         ("in_given_up", 0, 0), ("in_voided", 0, 0)]


def test_billing_init_gives_an_old_warehouse_the_analyst_role(old_warehouse: str) -> None:
    """The old warehouse had no billing_marts grants; after init the role reads its marts, present and
    future (a view dbt's user creates later), and still no billing table."""
    _init(old_warehouse)
    with psycopg.connect(old_warehouse, autocommit=True) as connection:
        connection.execute("create view billing_marts.invoice_count as select count(*) from billing.invoices")
        assert connection.execute(
            "select has_schema_privilege('billing_analyst', 'billing_marts', 'usage'),"
            " has_table_privilege('billing_analyst', 'billing_marts.invoice_count', 'select'),"
            " has_table_privilege('billing_analyst', 'billing.invoices', 'select'),"
            " has_table_privilege('billing_analyst', 'raw.webhook_endpoints', 'select')"
        ).fetchone() == (True, True, False, False)
