"""The incremental models repair themselves when raw stops being append-only (docs/incremental.md).

A DELETE on raw.usage_events (an operator removing bad events, a test fixture) is invisible to an
incremental run, which only looks for new rows: `billing init`'s trigger counts it, and the next
build rebuilds the event and usage models from raw. So is a month's partition detached by hand; one
detached by `billing events detach` is not: the models keep its events, and are not rebuilt from
raw until it is back (billing.raw_events).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from billing import raw_events, transform
from billing.catalog import apply_catalog
from billing.loading import load_events
from billing.quality.billing_gates import _event_reconciliation
from billing.schema import init_warehouse
from conftest import query, reset_warehouse, run_cli
from spine.events import usage, write_csv

pytestmark = pytest.mark.slow

CATALOG = """
meters:
  - {event_name: api_call, display_name: API calls, aggregation: sum}
plans:
  - plan_id: metered
    name: Metered
    currency: USD
    interval: month
    charges:
      - {event_name: api_call, pricing_model: per_unit, unit_price: 0.01}
customers:
  - {customer_id: acme, name: Acme, currency: USD, collection_method: request_payment}
subscriptions:
  - {subscription_id: s_acme, customer_id: acme, plan_id: metered, started_at: "2026-06-01T00:00:00Z"}
"""
AS_OF = "2026-07-01T01:00:00+00:00"


def june_usage() -> list[tuple]:
    return query(
        "select quantity, count_events from billing_intermediate.int_meter_usage__aggregated"
        " where subscription_id = 's_acme' and period_start = '2026-06-01T00:00:00Z'"
    )


def test_a_delete_from_raw_makes_the_next_build_rebuild_from_raw(warehouse, tmp_path: Path):
    reset_warehouse()
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    apply_catalog(tmp_path / "catalog.yaml")
    load_events(write_csv(tmp_path / "june.csv", usage("acme", "api_call", [10, 20, 30], "2026-06-10", "june")),
                show_progress=False)
    transform.update_usage(as_of=AS_OF, grace="1 hours")
    assert june_usage() == [(60, 3)]

    load_events(write_csv(tmp_path / "more.csv", usage("acme", "api_call", [5], "2026-06-11", "more")),
                show_progress=False)
    update = transform.update_usage(as_of=AS_OF, grace="1 hours")
    assert (update.rebuilt_from_raw, update.ledger_rows_processed) == (False, 1)
    assert june_usage() == [(65, 4)]

    staging, marts, currencies = views("billing_staging"), views("billing_marts"), seed()
    with transform.connect() as connection:
        connection.execute("delete from raw.usage_events where reference = 'june-1'")
    update = transform.update_usage(as_of=AS_OF, grace="1 hours")
    assert update.rebuilt_from_raw
    assert june_usage() == [(45, 3)]
    # the rebuild from raw replaced the incremental models and what reads them, not the kept relations
    assert views("billing_staging") == staging and seed() == currencies
    assert changed(marts, views("billing_marts")) == NOT_KEPT

    update = transform.update_usage(as_of=AS_OF, grace="1 hours")
    assert (update.rebuilt_from_raw, update.ledger_rows_processed) == (False, 0)


EVENTS_HEADER = "reference,customer_id,event_name,value,occurred_at,ingested_at\n"
# ingested at the end of June: p-none has no occurred_at (rejected, SPEC §2)
JUNE_LOAD = """p-1,acme,api_call,10,2026-06-20T00:00:00Z,2026-06-30T23:30:00Z
p-dup,acme,api_call,5,2026-06-29T00:00:00Z,2026-06-30T23:40:00Z
p-none,acme,api_call,7,,2026-06-30T23:40:00Z
"""
# across the month's end: p-late committed late (ingested before the ledger's latest, within the
# lookback), a July copy of p-dup (a duplicate: June's was ingested first), and p-stray with an
# ingested_at of May, before the lookback: the pipeline never reads it (nor bills it: acme subscribed
# in June)
BOUNDARY_LOAD = """p-late,acme,api_call,20,2026-06-30T12:00:00Z,2026-06-30T23:35:00Z
p-dup,acme,api_call,99,2026-06-29T00:00:00Z,2026-07-01T00:05:00Z
p-2,acme,api_call,1,2026-06-30T23:00:00Z,2026-07-01T00:10:00Z
p-stray,acme,api_call,100,2026-05-31T12:00:00Z,2026-05-31T12:00:00Z
"""


def test_months_across_partitions_and_detached(warehouse, tmp_path: Path):
    reset_warehouse()
    init_warehouse()  # lists the month partitions earlier tests left (reset emptied the list)
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    apply_catalog(tmp_path / "catalog.yaml")
    (tmp_path / "june.csv").write_text(EVENTS_HEADER + JUNE_LOAD)
    (tmp_path / "boundary.csv").write_text(EVENTS_HEADER + BOUNDARY_LOAD)
    load_events(tmp_path / "june.csv", show_progress=False)
    transform.update_usage(as_of=AS_OF, grace="1 hours")
    assert june_usage() == [(15, 2)]
    with pytest.raises(raw_events.PartitionError, match="2026-06 holds the latest event the usage models processed"):
        raw_events.detach_month(date(2026, 6, 1))

    load_events(tmp_path / "boundary.csv", show_progress=False)
    update = transform.update_usage(as_of=AS_OF, grace="1 hours")
    # p-late, p-2, both copies of p-dup: the ledger reads raw across partitions, by raw_row_id
    assert (update.rebuilt_from_raw, update.ledger_rows_processed) == (False, 4)
    assert june_usage() == [(36, 4)]
    assert query("select tableoid::regclass::text, reference from raw.usage_events order by raw_row_id") == [
        ("raw.usage_events_2026_06", "p-1"), ("raw.usage_events_2026_06", "p-dup"),
        ("raw.usage_events_2026_06", "p-none"), ("raw.usage_events_2026_06", "p-late"),
        ("raw.usage_events_2026_07", "p-dup"), ("raw.usage_events_2026_07", "p-2"),
        ("raw.usage_events_2026_05", "p-stray"),
    ]
    rejected = f"select reference, reject_reason from {transform.ref('fct_rejected_usage_events')} order by 1"
    assert query(rejected) == [("p-none", "missing_timestamp")]

    refused = run_cli("events", "detach", "2026-05", check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "1 events of 2026-05 are not in the usage models yet" in refused.stderr
    assert "detached 2026-06: 4 events" in run_cli("events", "detach", "2026-06").stdout
    assert query("select to_regclass('raw.usage_events_2026_06') is not null,"
                 " 'raw.usage_events_2026_06'::regclass::oid in (select inhrelid from pg_inherits)") == [(True, False)]
    # the models bill from what they hold: nothing to rebuild, nothing changed
    update = transform.update_usage(as_of=AS_OF, grace="1 hours")
    assert (update.rebuilt_from_raw, update.ledger_rows_processed) == (False, 0)
    assert june_usage() == [(36, 4)]
    # raw (May's stray, July's 2) + June's 4 detached: 7, against 6 accounted for (not the stray)
    assert query(_event_reconciliation())[0][0::4] == (7, 6)
    with pytest.raises(transform.TransformFailed, match="lacks the months 2026-06"):
        transform.rebuild(as_of=AS_OF, grace="1 hours")

    # July detached by hand is July's events deleted: a rebuild, which waits for June
    rewrites = "select last_value from raw.usage_events_rewrites"
    [(before,)] = query(rewrites)
    with transform.connect() as connection:
        connection.execute("alter table raw.usage_events detach partition raw.usage_events_2026_07")
    with pytest.raises(transform.TransformFailed, match="billing events attach 2026-06"):
        transform.update_usage(as_of=AS_OF, grace="1 hours")
    assert query(rewrites) == [(before + 1,)]
    assert query("select month::text from raw.usage_events_partitions where month >= '2026-05-01'"
                 " and month < '2026-08-01' order by 1") == [("2026-05-01",), ("2026-06-01",)]
    assert raw_events.attach_month(date(2026, 6, 1)) == 4
    update = transform.update_usage(as_of=AS_OF, grace="1 hours")
    assert update.rebuilt_from_raw
    assert june_usage() == [(35, 3)]  # June's events alone: July's p-2 left with July
    assert query(rejected) == [("p-none", "missing_timestamp"), ("p-stray", "no_active_subscription")]
    with transform.connect() as connection:
        connection.execute("drop table raw.usage_events_2026_07")  # gone for good, like its events


# Views a run's builds create every time: the event marts read the incremental event models, and of
# the analysts' views, two read what a build replaces (fct_usage_history the table fct_meter_usage,
# fct_data_quality_daily the event mart fct_rejected_usage_events), and fct_mrr the run's as_of (its
# SQL holds it), which the other two MRR views read.
NOT_KEPT = {"fct_rejected_usage_events", "fct_usage_event_duplicates", "fct_usage_history", "fct_data_quality_daily",
            "fct_mrr", "fct_mrr_movements", "fct_subscription_metrics_monthly"}


def views(schema: str) -> dict[str, int]:
    """Each view of `schema`: its oid by its name."""
    return dict(query("select viewname::text, format('%%I.%%I', schemaname, viewname)::regclass::oid::int"
                      " from pg_views where schemaname = %s", schema))


def seed() -> int:
    return query("select 'billing_staging.currencies'::regclass::oid::int")[0][0]


def changed(before: dict[str, int], after: dict[str, int]) -> set[str]:
    """The names in `before` whose relation is gone or another one."""
    return {name for name in before if after.get(name) != before[name]}


def test_kept_relations_are_created_again_only_when_missing_or_built_from_another_project(warehouse):
    def build(slice_: tuple[str, ...]) -> int:
        return transform.build(slice_, as_of=AS_OF, grace="1 hours")

    def execute(statement: str) -> None:
        with transform.connect() as connection:
            connection.execute(statement)

    reset_warehouse()
    build(transform.EVENTS_SLICE), build(transform.RATING_SLICE)
    staging, marts, currencies = views("billing_staging"), views("billing_marts"), seed()
    assert len(staging) == 26  # the models of models/staging but the 5 ephemeral ones
    assert len(marts) == 22  # the 20 analysts' views and the 2 event marts
    # current: the staging views, the seed and 15 of the analysts' views are left as they are; the
    # data tests of all of them run
    events, rating = build(transform.EVENTS_SLICE), build(transform.RATING_SLICE)
    assert views("billing_staging") == staging and seed() == currencies
    assert changed(marts, views("billing_marts")) == NOT_KEPT
    # built from another version of the project (an upgrade): the 26 staging views are created and
    # the seed loaded again, counted among the nodes. Replacing them drops the analysts' views; the next
    # rating build finds them missing and creates the 15 kept ones again
    execute("comment on schema billing_staging is 'kept relations of project 0'")
    assert build(transform.EVENTS_SLICE) == events + 27
    assert not set(views("billing_staging").values()) & set(staging.values())
    assert build(transform.RATING_SLICE) == rating + 15
    assert views("billing_marts").keys() == marts.keys()
