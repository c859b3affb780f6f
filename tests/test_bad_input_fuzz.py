"""Any event file, however malformed: refused in one line with nothing written, or loaded; and then
every loaded row is billed, quarantined or counted as a duplicate, and a customer untouched by the
bad rows is invoiced exactly (Hypothesis generates the files).

The two tests run in order on one warehouse: the first loads what Hypothesis makes, the second
closes January 2025 over all of it.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

import pytest
from billing.catalog import apply_catalog
from billing.loading import LoadError, load_events
from conftest import query, reset_warehouse, run_dag
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.slow

CATALOG = """
meters:
  - {event_name: api_call, display_name: API calls, aggregation: sum}
  - {event_name: peak_gb, display_name: Peak storage, aggregation: max}
plans:
  - plan_id: pro
    name: Pro
    currency: USD
    interval: month
    base_fee: 10
    charges:
      - {event_name: api_call, pricing_model: per_unit, unit_price: 0.01}
      - {event_name: peak_gb, pricing_model: per_unit, unit_price: 1}
customers:
  - {customer_id: fuzzed, name: Fuzzed, currency: USD, collection_method: request_payment}
  - {customer_id: control, name: Control, currency: USD, collection_method: request_payment}
subscriptions:
  - {subscription_id: s_fuzzed, customer_id: fuzzed, plan_id: pro, started_at: "2025-01-01T00:00:00Z"}
  - {subscription_id: s_control, customer_id: control, plan_id: pro, started_at: "2025-01-01T00:00:00Z"}
"""
CONTROL_EVENTS = (
    '{"reference": "control-1", "customer_id": "control", "event_name": "api_call", "value": 250,'
    ' "occurred_at": "2025-01-10T00:00:00Z"}\n'
    '{"reference": "control-2", "customer_id": "control", "event_name": "peak_gb", "value": 3,'
    ' "occurred_at": "2025-01-11T00:00:00Z"}\n'
)
# Rows that load and must be quarantined whatever Hypothesis draws (it may draw only refused files).
QUARANTINED_EVENTS = (
    '{"reference": "fixed-nan", "customer_id": "fuzzed", "event_name": "api_call", "value": "NaN",'
    ' "occurred_at": "2025-01-12T00:00:00Z"}\n'
    '{"reference": "fixed-nobody", "customer_id": "nobody", "event_name": "api_call", "value": 1,'
    ' "occurred_at": "2025-01-12T00:00:00Z"}\n'
)

JUNK_TEXT = st.sampled_from(["", " ", "abc", "NaN", "nan", "Infinity", "-Infinity", "1e400", "1e-400", "--1",
                             "9" * 5000, "0x10", "1,5", "\u00e9", "null", "true", "[1]", '{"a": 1}'])
VALUES = st.one_of(
    st.none(),
    st.integers(min_value=-10**6, max_value=10**6),
    st.decimals(allow_nan=True, allow_infinity=True, places=None),
    JUNK_TEXT,
)
TIMESTAMPS = st.one_of(
    st.sampled_from(["2025-01-05T00:00:00Z", "2025-01-31T23:59:59.999999+00:00", "2025-01-15 12:00:00+09",
                     "2024-12-31T23:59:59Z", "2031-01-01T00:00:00Z", "2025-02-30T00:00:00Z", "yesterday", ""]),
    st.none(),
)
EVENTS = st.fixed_dictionaries(
    {
        "reference": st.one_of(st.none(), st.sampled_from(["r1", "r2", "r3", "", " "]), st.text(max_size=8)),
        "customer_id": st.sampled_from(["fuzzed", "nobody", "", "FUZZED", None]),
        "event_name": st.sampled_from(["api_call", "peak_gb", "API_CALL", "", None]),
        "value": VALUES,
        "occurred_at": TIMESTAMPS,
    },
    optional={
        "properties": st.one_of(st.none(), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                                st.lists(st.integers(), max_size=2), st.text(max_size=4)),
        "action": st.sampled_from(["increment", "set", "SET", "junk", "", None]),
        "ingested_at": st.sampled_from(["2025-01-20T00:00:00Z", "not a time", None]),
    },
)


def _csv(events: list[dict]) -> bytes:
    columns = sorted({key for event in events for key in event})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for event in events:
        row = []
        for column in columns:
            value = event.get(column)
            row.append(json.dumps(value) if column == "properties" and value is not None
                       else "" if value is None else str(value))
        writer.writerow(row)
    return out.getvalue().encode()


def _jsonl(events: list[dict]) -> bytes:
    def plain(value):
        return str(value) if not isinstance(value, (int, str, dict, list, type(None))) else value
    return "".join(json.dumps({key: plain(value) for key, value in event.items()}) + "\n"
                   for event in events).encode()


def _raw_rows() -> int:
    return query("select count(*) from raw.usage_events")[0][0]


def test_any_event_file_is_refused_in_one_line_or_loaded(warehouse):
    reset_warehouse()
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "catalog.yaml").write_text(CATALOG)
        apply_catalog(Path(folder) / "catalog.yaml")
        (Path(folder) / "control.jsonl").write_text(CONTROL_EVENTS + QUARANTINED_EVENTS)
        load_events(Path(folder) / "control.jsonl", show_progress=False)

    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), database=None,
              derandomize=True)
    @given(events=st.lists(EVENTS, min_size=1, max_size=4), as_csv=st.booleans())
    def load_one(events: list[dict], as_csv: bool) -> None:
        before = _raw_rows()
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / ("events.csv" if as_csv else "events.jsonl")
            path.write_bytes(_csv(events) if as_csv else _jsonl(events))
            try:
                loaded = load_events(path, show_progress=False).rows
            except LoadError as refused:
                assert "\n" not in str(refused), str(refused)
                assert _raw_rows() == before  # nothing written
                return
        assert _raw_rows() == before + loaded == before + len(events)

    load_one()
    assert _raw_rows() > 4, "Hypothesis loaded no file at all"


def test_every_loaded_row_is_accounted_for_and_the_untouched_customer_is_invoiced(warehouse):
    run_dag("billing_cycle_close", "2025-02-01T01:00:00Z")

    [(billed,)] = query("select count(*) from billing_intermediate.int_usage_events__validated"
                        " where reject_reason is null")
    [(rejected,)] = query("select count(*) from billing_marts.fct_rejected_usage_events")
    [(duplicates,)] = query("select count(*) from billing_marts.fct_usage_event_duplicates")
    assert billed + rejected + duplicates == _raw_rows()
    assert query("select reference, reject_reason from billing_marts.fct_rejected_usage_events"
                 " where left(reference, 6) = 'fixed-' order by 1") == [
        ("fixed-nan", "invalid_value"), ("fixed-nobody", "unknown_customer")]
    # $10 + 250 calls × $0.01 + 3 GB × $1
    assert query("select total_minor from billing.invoices where subscription_id = 's_control'") == [(1_550,)]
    assert query("select count(*) from billing.invoices where subscription_id = 's_fuzzed'") == [(1,)]
