"""The events of the worked examples, written as CSV the way a loader would send them."""

from __future__ import annotations

import csv
from pathlib import Path

COLUMNS = ["reference", "customer_id", "event_name", "value", "action", "occurred_at"]


def usage(customer: str, event_name: str, values: list[int], day: str, prefix: str) -> list[tuple]:
    return [
        (f"{prefix}-{index}", customer, event_name, value, "", f"{day}T{index % 24:02d}:00:00Z")
        for index, value in enumerate(values)
    ]


def june_events() -> list[tuple]:
    return [
        # (a) 1,234,567 API calls in all — 1,234,460 here, 107 through the duplicates below — and 42 uploads
        *usage("usage_co", "api_call", [1_000_000, 234_000, 460], "2026-06-10", "a-api"),
        *usage("usage_co", "file_upload", [""] * 42, "2026-06-11", "a-upload"),
        # (d) one reference three times counts once (100); a conflicting copy follows in a later load
        *[("d-thrice", "usage_co", "api_call", 100, "", "2026-06-12T00:00:00Z")] * 3,
        ("d-conflict", "usage_co", "api_call", 7, "", "2026-06-12T01:00:00Z"),
        # (b) Pro Plan: 25,000 and 8,000 calls
        *usage("pro_heavy", "api_call", [20_000, 5_000], "2026-06-05", "b-heavy"),
        *usage("pro_light", "api_call", [8_000], "2026-06-05", "b-light"),
        # (c) started mid-month, below its included calls
        *usage("pro_late", "api_call", [500], "2026-06-20", "c-late"),
        # (e) ¥0.5 a call
        *usage("yen_co", "api_call", [1_000, 234], "2026-06-15", "e-june"),
        # (f) 16:30Z on June 30 is 01:30 on July 1 in Tokyo
        *usage("tokyo_co", "api_call", [40], "2026-06-10", "f-june"),
        ("f-tokyo-july", "tokyo_co", "api_call", 2, "", "2026-06-30T16:30:00Z"),
        # one event per reject reason (SPEC §2)
        ("", "usage_co", "api_call", 5, "", "2026-06-10T00:00:00Z"),
        ("r-no-customer", "", "api_call", 5, "", "2026-06-10T00:00:00Z"),
        ("r-unknown-customer", "nobody", "api_call", 5, "", "2026-06-10T00:00:00Z"),
        ("r-unknown-meter", "usage_co", "API_CALL", 5, "", "2026-06-10T00:00:00Z"),
        ("r-no-timestamp", "usage_co", "api_call", 5, "", ""),
        ("r-future", "usage_co", "api_call", 5, "", "2099-01-01T00:00:00Z"),
        ("r-negative", "usage_co", "api_call", -5, "", "2026-06-10T00:00:00Z"),
        ("r-set-on-count", "usage_co", "file_upload", 1, "set", "2026-06-10T00:00:00Z"),
        ("r-bad-action", "usage_co", "api_call", 1, "Increment", "2026-06-10T00:00:00Z"),
        ("r-before-start", "pro_late", "api_call", 5, "", "2026-06-10T00:00:00Z"),
    ]


def late_duplicates() -> list[tuple]:
    """A second load: a conflicting copy of d-conflict (billed: the first ingested, 7)."""
    return [("d-conflict", "usage_co", "api_call", 9, "", "2026-06-12T01:00:00Z")]


def july_events() -> list[tuple]:
    return [
        *usage("yen_co", "api_call", [1_235], "2026-07-15", "e-july"),
        *usage("pro_heavy", "api_call", [8_000], "2026-07-15", "b-heavy-july"),
    ]


def write_csv(path: Path, rows: list[tuple]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return path
