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
        connection.execute("insert into billing.webhook_deliveries (event_id, endpoint_id) values (%s, %s)",
                           PENDING_DELIVERY)
        connection.cursor().executemany("insert into raw.usage_events values (%s, %s, %s, %s, %s, %s, %s, %s)",
                                        LATE_EVENTS)
        connection.execute("grant select on raw.usage_events to public")
        balances = connection.execute(BALANCES.format(grants="raw.credit_grants")).fetchall()
    before = _read(old_warehouse)
    assert [row[1] for row in before["invoices"]] == ["INV-000001", "INV-000002"]
    assert balances == [(CARRIED_GRANT[0], 250), ("welcome", 500)]

    _init(old_warehouse)
    _init(old_warehouse)  # again: nothing moves twice

    assert _read(old_warehouse) == before
    with psycopg.connect(old_warehouse) as connection:
        connection.execute("set timezone = 'UTC'")
        # issued at 20:27 UTC on Dec 3: Dec 4 in Tokyo; due at once (no net terms), at local midnight
        assert connection.execute(
            "select invoice_number, invoice_date::text, due_at, issued_by_run, issued_in_backfill"
            " from billing.invoices order by invoice_number"
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
        ).fetchall() == [(0, 0, 0, 0, False)] * 2
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
        # its one attempt succeeded: nothing for the retry schedule
        assert connection.execute("select * from billing.charge_collection_schedule").fetchall() == []
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
