"""The hourly usage pipeline gives exactly what a full rebuild from raw gives (docs/incremental.md).

A generated scenario (tests/differential/generator.py: every aggregation and pricing model,
duplicates, conflicting copies, every reject reason) is loaded in four batches by ingestion time,
with a `usage_pipeline` run through Airflow after each. The batches carry what an incremental
pipeline can get wrong: late events for periods processed long ago, copies of references first
seen batches earlier, copies that arrive late but were ingested first (they displace the earlier
winner), and a catalog that changes between runs (a customer whose events came first, a plan
change recorded after the fact). Then the cycle close's builds draft the invoices, and every usage,
quarantine, duplicate and draft row is compared with `billing.transform.rebuild()`'s.
"""

from __future__ import annotations

import json
import sys
from copy import deepcopy
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from billing import transform
from billing.catalog import apply_catalog
from billing.loading import load_events
from conftest import query, reset_warehouse, run_dag

sys.path.insert(0, str(Path(__file__).parents[1] / "differential"))
from generator import AS_OF, scenario  # noqa: E402

pytestmark = pytest.mark.slow

SEED = 7
CUSTOMERS = 12
LATE_CUSTOMER = "c02"  # its catalog entry arrives after its first events were processed
PLAN_CHANGE_CUSTOMER = "c01"  # its plan change is recorded after events on the new plan arrived
AS_OF_TEXT = AS_OF.isoformat()
GRACE = "1 hours"

# What is compared, each in a total order.
COMPARED = {
    "usage": "select * from billing_intermediate.int_meter_usage__aggregated order by 1, 2, 3",
    "period_local_usage": "select * from billing_intermediate.int_meter_usage__period_local order by 1, 2, 3",
    "stateful_usage": "select * from billing_intermediate.int_meter_usage__stateful order by 1, 2, 3",
    # as text: an open segment ends at 'infinity', which Python's datetime cannot hold
    "state_segments": "select segments::text from billing_intermediate.int_meter_state__segments as segments"
                      " order by raw_row_id",
    "meter_usage_mart": "select * from billing_marts.fct_meter_usage order by 2, 4, 6",
    "rejected": "select * from billing_marts.fct_rejected_usage_events"
                " order by reject_reason, reference, ingested_at, occurred_at, customer_id, value",
    "duplicates": "select * from billing_marts.fct_usage_event_duplicates"
                  " order by reference, ingested_at, occurred_at, value",
    "validated": "select * from billing_intermediate.int_usage_events__validated order by raw_row_id",
    "ledger": "select raw_row_id, reference, reference_rank, winner_payload, winner_ingested_at"
              " from billing_intermediate.int_usage_events__ranked order by raw_row_id",
    "draft_invoices": "select * from billing_marts.fct_draft_invoices order by invoice_id",
    "draft_invoice_lines": "select * from billing_marts.fct_draft_invoice_lines order by invoice_id, line_no",
}


@pytest.fixture(scope="module")
def loaded(warehouse, tmp_path_factory):
    """Run the scenario batch by batch through `usage_pipeline`; returns what the test needs to know."""
    reset_warehouse()
    folder = tmp_path_factory.mktemp("usage_pipeline")
    generated = scenario(SEED, customers=CUSTOMERS)
    batches, boundaries = _batches(generated.events)
    late_winners = _late_winning_copies(batches, boundaries)

    _apply(folder / "early_catalog.yaml", _early_catalog(generated.catalog))
    outcomes = []
    for number, (batch, boundary) in enumerate(zip(batches, boundaries, strict=True), start=1):
        if number == 2:
            _apply(folder / "catalog.yaml", generated.catalog)
        _load(folder / f"batch_{number}.jsonl", batch)
        outcomes.append(_run_pipeline(boundary))
    return {"folder": folder, "late_winners": late_winners, "outcomes": outcomes, "batches": batches}


def test_each_run_processes_only_its_batch(loaded):
    # Each run stamps the ledger rows it writes: its batch, and the earlier copies of the references
    # the batch touches (which a later run may stamp again). Four runs, four stamps; no run rewrote
    # the history.
    stamps = query(
        "select processed_at, count(*) from billing_intermediate.int_usage_events__ranked group by 1 order by 1"
    )
    rows_loaded = [len(batch) for batch in loaded["batches"]]
    assert len(stamps) == len(rows_loaded)
    assert sum(count for _, count in stamps) == sum(rows_loaded)
    (_, last_run_rows) = stamps[-1]
    assert rows_loaded[-1] <= last_run_rows < rows_loaded[-1] * 1.25


def test_a_run_without_new_events_touches_nothing(loaded):
    before = _physical_state()
    _run_pipeline(AS_OF + timedelta(hours=1))
    assert query("select count(*) from billing_intermediate.int_usage_events__changed") == [(0,)]
    assert _physical_state() == before


def test_incremental_path_equals_full_rebuild(loaded):
    # the cycle close's two builds, on the maintained models
    transform.build(transform.EVENTS_SLICE, as_of=AS_OF_TEXT, grace=GRACE)
    transform.build(transform.RATING_SLICE, as_of=AS_OF_TEXT, grace=GRACE)
    incremental = {name: query(sql) for name, sql in COMPARED.items()}

    transform.rebuild(as_of=AS_OF_TEXT, grace=GRACE)
    rebuilt = {name: query(sql) for name, sql in COMPARED.items()}

    for name in COMPARED:
        assert incremental[name] == rebuilt[name], (
            f"{name} differs: {_first_difference(incremental[name], rebuilt[name])}"
        )
    assert len(rebuilt["draft_invoice_lines"]) > 100 and len(rebuilt["duplicates"]) > 100


def test_the_scenario_exercised_what_it_claims(loaded):
    # copies loaded a batch late but ingested first displaced the earlier winner
    for reference, value in loaded["late_winners"]:
        assert query(
            "select value from billing_intermediate.int_usage_events__validated where reference = %s", reference
        ) == [(value,)]
    # the late customer's events were validated again once its catalog entry arrived
    assert query(
        "select count(*) from billing_marts.fct_rejected_usage_events where customer_id = %s", LATE_CUSTOMER
    ) == [(0,)]
    assert query(
        "select count(*) > 0 from billing_intermediate.int_usage_events__attributed where customer_id = %s",
        LATE_CUSTOMER,
    ) == [(True,)]


def _run_pipeline(as_of):
    return run_dag("usage_pipeline", (as_of + timedelta(minutes=5)).isoformat(), as_of=as_of.isoformat())


def _physical_state() -> dict:
    """Every maintained row with its xmin: a rewritten row, even with the same values, shows."""
    return {
        table: query(f"select xmin::text, rows::text from billing_intermediate.{table} as rows order by 2")
        for table in ("int_usage_events__ranked", "int_usage_events__validated", "int_meter_usage__period_local",
                      "int_meter_state__segments")
    }


def _batches(events: list[dict]) -> tuple[list[list[dict]], list]:
    """Four batches by ingestion time; each batch is loaded after the previous one was processed."""
    ordered = sorted(events, key=lambda event: event["ingested_at"])
    size = len(ordered) // 4 + 1
    batches = [ordered[index:index + size] for index in range(0, len(ordered), size)]
    boundaries = [max(event["ingested_at"] for event in batch) for batch in batches]
    return batches, boundaries


def _late_winning_copies(batches: list[list[dict]], boundaries: list) -> list[tuple[str, Decimal]]:
    """At the end of each batch but the last, an event; and a conflicting copy of it ingested 5 minutes
    earlier that is only loaded with the next batch. Inside the pipeline's lookback, the copy wins
    (SPEC §2: first ingested), displacing a winner an earlier run billed."""
    winners = []
    for number, (batch, boundary) in enumerate(zip(batches[:-1], boundaries, strict=False), start=1):
        model = next(
            event for event in reversed(batch)
            if event["reference"] and event["value"] is not None
            and event["event_name"] in ("api_calls", "cpu_peak", "kart_payments", "guest_seats", "inventory_gb")
            and event["occurred_at"] <= boundary - timedelta(hours=1)
        )
        original = {**model, "reference": f"late-winner-{number}", "ingested_at": boundary - timedelta(minutes=10)}
        copy = {**original, "value": original["value"] + 7, "ingested_at": boundary - timedelta(minutes=15)}
        batch.append(original)
        batches[number].insert(0, copy)
        winners.append((copy["reference"], copy["value"]))
    return winners


def _early_catalog(catalog: dict) -> dict:
    """The catalog as it stood before the first run: one customer not yet created, one plan change
    not yet recorded (its first subscription still open, the second missing)."""
    early = deepcopy(catalog)
    early["customers"] = [c for c in early["customers"] if c["customer_id"] != LATE_CUSTOMER]
    early["credit_grants"] = [g for g in early["credit_grants"] if g["customer_id"] != LATE_CUSTOMER]
    subscriptions = [s for s in early["subscriptions"] if s["customer_id"] != LATE_CUSTOMER]
    changed = [s for s in subscriptions if s["customer_id"] == PLAN_CHANGE_CUSTOMER]
    assert len(changed) == 2, "the seed's plan-change customer changed"
    first, second = sorted(changed, key=lambda s: s["started_at"])
    first.pop("ended_at", None)
    early["subscriptions"] = [s for s in subscriptions if s is not second]
    early["coupon_redemptions"] = [
        r for r in early.get("coupon_redemptions", [])
        if r["customer_id"] != LATE_CUSTOMER and r.get("subscription_id") != second["subscription_id"]
    ]
    return early


def _apply(path: Path, catalog: dict) -> None:
    from generator import _plain

    path.write_text(yaml.safe_dump(_plain(catalog), sort_keys=False))
    apply_catalog(path)


def _load(path: Path, events: list[dict]) -> None:
    from generator import _plain

    path.write_text("".join(json.dumps(_plain(event)) + "\n" for event in events))
    load_events(path, show_progress=False)


def _first_difference(left: list, right: list) -> str:
    for index, (a, b) in enumerate(zip(left, right, strict=False)):
        if a != b:
            return f"row {index}: incremental {a} != rebuilt {b}"
    return f"row counts: incremental {len(left)}, rebuilt {len(right)}"
