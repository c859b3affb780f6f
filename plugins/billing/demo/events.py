"""Synthetic usage for the demo: two months of the worked examples, with duplicates and bad events.

Deterministic (seeded), so every demo run bills the same amounts:
- acme (pay as you go): June 1,234,567 API calls and 42 uploads → $1,238.77
- globex (Pro, $99 incl. 10,000 calls): June 25,000 calls → $249.00; July 8,000 → $99.00
- initech (Pro from June 16, anchor day 1): June 8,000 calls → $49.50 prorated base fee
- umbrella (¥0.5/call, Asia/Tokyo): June 1,234 calls → ¥617; July 1,235 → ¥618, including one
  sent at 2026-06-30T16:30Z, which is already July in Tokyo
"""

from __future__ import annotations

import csv
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

COLUMNS = ["reference", "customer_id", "event_name", "value", "action", "occurred_at"]
JUNE = datetime(2026, 6, 1, tzinfo=UTC)
JULY = datetime(2026, 7, 1, tzinfo=UTC)

# (customer, event_name, total units, number of events, month start, days in month)
USAGE = [
    ("acme", "api_call", 1_234_567, 500, JUNE, 30),
    ("acme", "file_upload", 42, 42, JUNE, 30),
    ("acme", "api_call", 876_543, 400, JULY, 31),
    ("acme", "file_upload", 17, 17, JULY, 31),
    ("globex", "api_call", 25_000, 250, JUNE, 30),
    ("globex", "api_call", 8_000, 80, JULY, 31),
    ("initech", "api_call", 8_000, 40, JUNE + timedelta(days=15), 15),
    ("initech", "api_call", 12_345, 60, JULY, 31),
    ("umbrella", "api_call", 1_234, 20, JUNE, 29),
    ("umbrella", "api_call", 1_234, 20, JULY, 30),
]

# Events no invoice may bill, one per reject reason (SPEC §2).
BAD_EVENTS = [
    ("", "acme", "api_call", "5", "", "2026-06-10T00:00:00Z"),                     # missing_reference
    ("bad-2", "", "api_call", "5", "", "2026-06-10T00:00:00Z"),                    # missing_customer
    ("bad-3", "hooli", "api_call", "5", "", "2026-06-10T00:00:00Z"),               # unknown_customer
    ("bad-4", "acme", "api_calls", "5", "", "2026-06-10T00:00:00Z"),               # unknown_meter
    ("bad-5", "acme", "api_call", "5", "", ""),                                    # missing_timestamp
    ("bad-6", "acme", "api_call", "5", "", "2099-01-01T00:00:00Z"),                # future_timestamp
    ("bad-7", "acme", "api_call", "-5", "", "2026-06-10T00:00:00Z"),               # invalid_value
    ("bad-8", "acme", "file_upload", "1", "set", "2026-06-10T00:00:00Z"),          # invalid_action
    ("bad-9", "initech", "api_call", "5", "", "2026-06-01T00:00:00Z"),             # no_active_subscription
]


def write_demo_events(path: Path, *, seed: int = 7) -> int:
    """Write the demo's events as CSV; returns the number of rows."""
    generator = random.Random(seed)
    rows = []
    for customer, event_name, total, count, start, days in USAGE:
        rows.extend(_spread(generator, customer, event_name, total, count, start, days))
    rows.append(("umb-tokyo-july", "umbrella", "api_call", "1", "", "2026-06-30T16:30:00Z"))
    rows.extend(_duplicates(generator, rows))
    rows.extend(BAD_EVENTS)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return len(rows)


def _spread(generator, customer, event_name, total, count, start, days):
    """`count` events over the month whose values add up to `total` exactly."""
    cuts = sorted(generator.sample(range(1, total), count - 1)) if count > 1 else []
    values = [upper - lower for lower, upper in zip([0, *cuts], [*cuts, total], strict=True)]
    # Tokyo's June ends at 15:00Z on the 30th: keep umbrella's events inside its local month.
    span = timedelta(days=days) - timedelta(hours=10)
    for index, value in enumerate(values):
        occurred_at = start + span * generator.random() + timedelta(hours=1)
        reference = f"{customer}-{event_name}-{start:%Y%m}-{index:05d}"
        shown_value = "" if event_name == "file_upload" else str(value)
        yield reference, customer, event_name, shown_value, "", occurred_at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _duplicates(generator, rows):
    """Redeliveries: 1% of events sent again as they were, and one with a different value."""
    yield from generator.sample(rows, len(rows) // 100)
    reference, customer, event_name, value, action, occurred_at = rows[0]
    yield reference, customer, event_name, str(int(value) + 1000), action, occurred_at
