"""`billing load events`: COPY, all or nothing, malformed files refused with line and reason."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from conftest import query, reset_warehouse, run_cli

CSV_HEADER = "reference,customer_id,event_name,value,occurred_at\n"


def test_csv_and_json_lines_load_exactly(warehouse, tmp_path):
    reset_warehouse()
    (tmp_path / "events.csv").write_text(CSV_HEADER + "e1,c1,api_call,0.001,2026-06-01T00:00:00Z\ne2,c1,api_call,,\n")
    (tmp_path / "events.jsonl").write_text(
        '{"reference": "e3", "customer_id": "c1", "event_name": "seats", "value": 12.50,'
        ' "properties": {"region": "eu", "n": 1}, "action": "set", "occurred_at": "2026-06-02T10:00:00+02:00"}\n'
    )
    assert "loaded 2 events" in run_cli("load", "events", str(tmp_path / "events.csv")).stdout
    assert "loaded 1 events" in run_cli("load", "events", str(tmp_path / "events.jsonl")).stdout
    assert query(
        "select reference, value, properties, action, occurred_at::text, ingested_at is not null"
        " from raw.usage_events order by reference"
    ) == [
        ("e1", Decimal("0.001"), None, None, "2026-06-01 00:00:00+00", True),
        ("e2", None, None, None, None, True),
        ("e3", Decimal("12.50"), {"region": "eu", "n": 1}, "set", "2026-06-02 08:00:00+00", True),
    ]


def test_loads_land_in_the_partitions_of_their_months(warehouse, tmp_path):
    """One partition per UTC month of ingested_at (billing.raw_events): a load makes those it needs,
    moving its rows out of the default partition without counting a rewrite of raw; a row of no
    month a date can name stays in the default partition."""
    from billing.loading import load_events

    reset_warehouse()
    rewrites = query("select last_value, is_called from raw.usage_events_rewrites")
    (tmp_path / "boundary.csv").write_text(
        "reference,occurred_at,ingested_at\n"
        "june,,2026-06-30T23:59:59.999999Z\n"
        "july,2026-07-01T00:00:00Z,2026-07-01T02:00:00+02:00\n"
        "later,,2031-02-01T00:00:00Z\n"
        "never,,infinity\n"
    )
    (tmp_path / "now.jsonl").write_text('{"reference": "now"}\n')
    assert load_events(tmp_path / "boundary.csv", show_progress=False).rows == 4
    assert load_events(tmp_path / "now.jsonl", show_progress=False).rows == 1
    assert query("select reference, tableoid::regclass::text from raw.usage_events order by raw_row_id") == [
        ("june", "raw.usage_events_2026_06"),
        ("july", "raw.usage_events_2026_07"),
        ("later", "raw.usage_events_2031_02"),
        ("never", "raw.usage_events_default"),
        ("now", f"raw.usage_events_{datetime.now(UTC):%Y_%m}"),
    ]
    assert query(
        "select pg_get_expr(relpartbound, oid) from pg_class where oid = 'raw.usage_events_2026_07'::regclass"
    ) == [("FOR VALUES FROM ('2026-07-01 00:00:00+00') TO ('2026-08-01 00:00:00+00')",)]
    assert query("select last_value, is_called from raw.usage_events_rewrites") == rewrites
    # the default partition the COPY filled became one of these months' partitions: indexed as all are
    [(partitions, indexed)] = query(
        "select count(*) filter (where inhparent = 'raw.usage_events'::regclass),"
        " count(*) filter (where inhparent = 'raw.usage_events__ingested_at_idx'::regclass) from pg_inherits"
    )
    assert partitions == indexed >= 6  # June, July, 2031-02, this month and the next, the default


def test_malformed_csv_is_refused_with_its_line_and_nothing_is_loaded(warehouse, tmp_path):
    reset_warehouse()
    path = tmp_path / "bad.csv"
    path.write_text(CSV_HEADER + "e1,c1,api_call,1,2026-06-01T00:00:00Z\ne2,c1,api_call,1,2026-13-01T00:00:00Z\n")
    refused = run_cli("load", "events", str(path), check=False)
    assert refused.returncode == 1
    assert "line 3" in refused.stderr and "column occurred_at" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert query("select count(*) from raw.usage_events") == [(0,)]


def test_malformed_json_lines_are_refused_with_their_line(warehouse, tmp_path):
    reset_warehouse()
    path = tmp_path / "bad.jsonl"
    path.write_text('{"reference": "e1", "value": 1}\n\n{"reference": "e2", "value": "many"}\n')
    refused = run_cli("load", "events", str(path), check=False)
    assert refused.returncode == 1
    assert "line 3: invalid input syntax for type numeric" in refused.stderr
    path.write_text('{"reference": "e1"}\n{"reference": "e2", "colour": "red"}\n')
    assert "line 2: unknown field(s) colour" in run_cli("load", "events", str(path), check=False).stderr
    assert query("select count(*) from raw.usage_events") == [(0,)]


def test_csv_header_and_row_errors_are_one_line_with_the_files_line(warehouse, tmp_path):
    reset_warehouse()
    cases = {
        "latin1.csv": ("reference,customer_id,event_name,valu\xe9\n".encode("latin-1"),
                       "line 1: the header is not UTF-8 text"),
        "twice.csv": (b"reference,customer_id,value,value\ne1,c1,1,2\n",
                      "line 1: column(s) value given more than once"),
        # line 4 has a field too many: the line is the file's, not the 777 in the row's data
        "data_777.csv": ((CSV_HEADER + "e1,c1,api_call,1,2026-06-01T00:00:00Z\n" * 2
                          + "e3,c1,api_call,777,2026-06-01T00:00:00Z,more\n").encode(),
                         "line 4: extra data after last expected column"),
        "empty_ingested_at.csv": (b"reference,customer_id,event_name,value,occurred_at,ingested_at\n"
                                  b"e1,c1,api_call,1,2026-06-01T00:00:00Z,\n",
                                  'line 2: null value in column "ingested_at"'),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        refused = run_cli("load", "events", str(tmp_path / name), check=False)
        assert refused.returncode == 1, (name, refused.stdout)
        assert message in refused.stderr, (name, refused.stderr)
        assert "Traceback" not in refused.stderr, (name, refused.stderr)
    assert query("select count(*) from raw.usage_events") == [(0,)]


def test_a_json_value_of_5000_digits_loads_exactly(warehouse, tmp_path):
    reset_warehouse()
    digits = "9" * 5000
    (tmp_path / "huge.jsonl").write_text(
        f'{{"reference": "huge", "customer_id": "c1", "event_name": "api_call", "value": {digits},'
        ' "occurred_at": "2026-06-01T00:00:00Z"}\n'
    )
    assert "loaded 1 events" in run_cli("load", "events", str(tmp_path / "huge.jsonl")).stdout
    assert query("select value = %s::numeric from raw.usage_events", digits) == [(True,)]


def test_properties_that_are_not_an_object_are_refused_alike_in_csv_and_json_lines(warehouse, tmp_path):
    reset_warehouse()
    header = "reference,customer_id,event_name,value,properties,occurred_at\n"
    (tmp_path / "array.csv").write_text(header + 'e1,c1,api_call,1,"{""region"": ""eu""}",2026-06-01T00:00:00Z\n'
                                                 'e2,c1,api_call,1,"[1, 2]",2026-06-01T00:00:00Z\n')
    (tmp_path / "text.csv").write_text(header + 'e1,c1,api_call,1,"""str""",2026-06-01T00:00:00Z\n')
    (tmp_path / "array.jsonl").write_text(
        '{"reference": "e1", "properties": {"region": "eu"}}\n{"reference": "e2", "properties": [1, 2]}\n')
    for name, line in (("array.csv", 3), ("text.csv", 2), ("array.jsonl", 2)):
        refused = run_cli("load", "events", str(tmp_path / name), check=False)
        assert (refused.returncode, refused.stderr.strip()) == (
            1, f"error: {tmp_path / name}: refused, nothing loaded: line {line}: properties must be a JSON object")
    assert query("select count(*) from raw.usage_events") == [(0,)]
