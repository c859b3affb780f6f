"""The reference model against SPEC's worked examples and a few hand-computed cases (no warehouse)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import reference  # noqa: E402
from reference import compute_invoices, periods, rate, round_half_away  # noqa: E402

UTC = UTC
TIERS = [{"up_to": 10_000, "unit_price": D("0.02")}, {"up_to": None, "unit_price": D("0.01")}]


def charge(**fields):
    return reference.Catalog.from_dict(
        {"plans": [{"plan_id": "p", "currency": "USD", "interval": "month",
                    "charges": [{"event_name": "m", **fields}]}]}
    ).plans["p"]["charges"][0]


def test_graduated_and_volume_examples():
    graduated = charge(pricing_model="graduated", tiers=TIERS)
    volume = charge(pricing_model="volume", tiers=TIERS)
    assert rate(graduated, Fraction(60_000), 0) == 700
    assert rate(volume, Fraction(60_000), 0) == 600
    assert rate(volume, Fraction(9_000), 0) == 180
    assert rate(volume, Fraction(0), 0) == 0
    with_fees = charge(pricing_model="graduated", tiers=[
        {"up_to": 10, "unit_price": 1, "flat_fee": 5}, {"up_to": 20, "unit_price": D("0.5"), "flat_fee": 7},
        {"up_to": None, "unit_price": D("0.1"), "flat_fee": 100}])
    assert rate(with_fees, Fraction(15), 0) == 10 + 5 + D("2.5") + 7  # the unbounded tier has no slice
    assert rate(with_fees, Fraction(10), 0) == 15


def test_package_and_percentage_examples():
    assert rate(charge(pricing_model="package", unit_price=5, package_size=1000), Fraction(2001), 0) == 15
    assert rate(charge(pricing_model="package", unit_price=5, package_size=1000), Fraction(0), 0) == 0
    percentage = charge(pricing_model="percentage", percentage_rate=D("2.9"), fixed_fee_per_event=D("0.30"),
                        included_units=500)
    assert rate(percentage, Fraction(1000), 10) == 32  # included units ignored


def test_rounding_half_away_from_zero():
    assert round_half_away(Fraction(1235) * Fraction(1, 2), 0) == 618
    assert round_half_away(Fraction(1234) * Fraction(1, 2), 0) == 617
    assert round_half_away(Fraction(-5, 1000), 2) == -1
    assert round_half_away(Fraction(12345, 10_000), 3) == 1235


CATALOG = {
    "meters": [
        {"event_name": "api_call", "display_name": "API", "aggregation": "sum"},
        {"event_name": "seats", "display_name": "Seats", "aggregation": "last_ever"},
        {"event_name": "vm", "display_name": "VM", "aggregation": "time_duration", "property": "id"},
        {"event_name": "gb", "display_name": "GB", "aggregation": "weighted_sum"},
    ],
    "plans": [
        {"plan_id": "pro", "name": "Pro", "currency": "USD", "interval": "month", "base_fee": 99,
         "charges": [{"event_name": "api_call", "pricing_model": "per_unit", "unit_price": D("0.01"),
                      "included_units": 10_000}]},
        {"plan_id": "yen", "name": "Yen", "currency": "JPY", "interval": "month",
         "charges": [{"event_name": "api_call", "pricing_model": "per_unit", "unit_price": D("0.5")}]},
        {"plan_id": "state", "name": "State", "currency": "USD", "interval": "month",
         "charges": [{"event_name": name, "pricing_model": "per_unit", "unit_price": 1}
                     for name in ("gb", "seats", "vm")]},
        {"plan_id": "state2", "name": "State 2", "currency": "USD", "interval": "month",
         "charges": [{"event_name": name, "pricing_model": "per_unit", "unit_price": 2}
                     for name in ("gb", "seats", "vm")]},
    ],
    "customers": [
        {"customer_id": "heavy", "currency": "USD"},
        {"customer_id": "late", "currency": "USD"},
        {"customer_id": "yen", "currency": "JPY"},
        {"customer_id": "jan", "currency": "USD"},
        {"customer_id": "state", "currency": "USD", "timezone": "Europe/Berlin"},
    ],
    "subscriptions": [
        {"subscription_id": "s_heavy", "customer_id": "heavy", "plan_id": "pro", "started_at": "2026-06-01T00:00:00Z"},
        {"subscription_id": "s_late", "customer_id": "late", "plan_id": "pro", "started_at": "2026-06-16T00:00:00Z",
         "billing_anchor_day": 1},
        {"subscription_id": "s_yen", "customer_id": "yen", "plan_id": "yen", "started_at": "2026-06-01T00:00:00Z"},
        {"subscription_id": "s_jan", "customer_id": "jan", "plan_id": "pro", "started_at": "2026-01-10T12:00:00Z"},
        # plan change on Feb 15 00:00 Berlin
        {"subscription_id": "s_state1", "customer_id": "state", "plan_id": "state",
         "started_at": "2025-12-31T23:00:00Z", "ended_at": "2026-02-14T23:00:00Z"},
        {"subscription_id": "s_state2", "customer_id": "state", "plan_id": "state2",
         "started_at": "2026-02-14T23:00:00Z", "billing_anchor_day": 1},
    ],
    "credit_grants": [
        {"grant_id": "g2", "customer_id": "heavy", "currency": "USD", "amount": 100,
         "granted_at": "2026-06-01T00:00:00Z"},
        {"grant_id": "g1", "customer_id": "heavy", "currency": "USD", "amount": 200,
         "granted_at": "2026-06-02T00:00:00Z", "expires_at": "2026-09-01T00:00:00Z"},
        {"grant_id": "g3", "customer_id": "heavy", "currency": "EUR", "amount": 500,
         "granted_at": "2026-06-02T00:00:00Z"},
        {"grant_id": "g4", "customer_id": "heavy", "currency": "USD", "amount": 500,
         "granted_at": "2026-07-01T00:00:00Z"},
    ],
}


def event(reference, customer, name, value, at, ingested=None, **extra):
    at_dt = datetime.fromisoformat(at.replace("Z", "+00:00"))
    return {"reference": reference, "customer_id": customer, "event_name": name, "value": value,
            "occurred_at": at, "ingested_at": ingested or (at_dt + timedelta(hours=1)).isoformat(), **extra}


def by_subscription(invoices):
    result = {}
    for invoice in invoices:
        result.setdefault(invoice.subscription_id, []).append(invoice)
    return result


def test_pro_plan_yen_proration_and_credits():
    events = [
        event("h1", "heavy", "api_call", D(20_000), "2026-06-05T00:00:00Z"),
        event("h2", "heavy", "api_call", D(5_000), "2026-06-05T01:00:00Z"),
        event("y1", "yen", "api_call", D(1_235), "2026-06-15T00:00:00Z"),
        event("l1", "late", "api_call", D(500), "2026-06-20T00:00:00Z"),
    ]
    invoices, rejects = compute_invoices(CATALOG, events, "2026-07-01T01:00:00Z")
    assert rejects == {}
    subs = by_subscription(invoices)
    [heavy] = subs["s_heavy"]
    assert [(line.kind, line.amount_minor) for line in heavy.lines] == [
        ("base_fee", 9_900), ("usage", 15_000), ("credit", -24_900)]
    assert (heavy.subtotal_minor, heavy.credits_minor, heavy.total_minor) == (24_900, 24_900, 0)
    [yen] = subs["s_yen"]
    assert yen.total_minor == 618
    [late] = subs["s_late"]
    assert [(line.kind, line.quantity, line.amount_minor) for line in late.lines] == [
        ("base_fee", Fraction(1, 2), 4_950), ("usage", 500, 0)]
    # January: [Jan 10 12:00, Feb 10) pays 30.5/31 of the fee
    jan = subs["s_jan"]
    assert jan[0].period_end == datetime(2026, 2, 10, tzinfo=UTC)
    assert jan[0].lines[0].quantity == Fraction(61, 62)
    assert jan[0].lines[0].amount_minor == round_half_away(Fraction(99) * 61 / 62, 2) == 9_740
    # credits: g1 (expires first) is used up first, then g2; the EUR grant never applies
    assert [i.invoice_number for i in invoices][:1] == ["INV-000001"]


def test_credit_order_and_carry():
    events = [event("h1", "heavy", "api_call", D(25_000), "2026-06-05T00:00:00Z"),
              event("h2", "heavy", "api_call", D(30_000), "2026-07-05T00:00:00Z")]
    invoices, _ = compute_invoices(CATALOG, events, "2026-08-01T01:00:00Z")
    june, july = by_subscription(invoices)["s_heavy"]
    assert june.credits_minor == 24_900  # g1 (expires first) 20,000 + g2 4,900
    # July: subtotal 9,900 + 20,000; g1 is spent; g2 has 5,100 left, g4 (granted 07-01 < 08-01) 50,000
    assert july.subtotal_minor == 29_900
    assert july.credits_minor == 29_900 and july.total_minor == 0


def test_periods_clamp_to_month_end_and_use_the_local_midnight():
    sub = {"started_at": datetime(2026, 1, 31, 5, tzinfo=UTC), "ended_at": None, "billing_anchor_day": None}
    ends = [p.end for p in periods(sub, "month", "UTC", datetime(2026, 6, 1, tzinfo=UTC))]
    assert ends[:4] == [datetime(2026, 2, 28, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC),
                        datetime(2026, 4, 30, tzinfo=UTC), datetime(2026, 5, 31, tzinfo=UTC)]
    tokyo = {"started_at": datetime(2026, 5, 31, 15, tzinfo=UTC), "ended_at": None, "billing_anchor_day": 1}
    first = periods(tokyo, "month", "Asia/Tokyo", datetime(2026, 8, 1, tzinfo=UTC))[0]
    assert (first.start, first.end, first.fraction) == (
        datetime(2026, 5, 31, 15, tzinfo=UTC), datetime(2026, 6, 30, 15, tzinfo=UTC), 1)
    yearly = {"started_at": datetime(2024, 2, 29, 10, tzinfo=UTC), "ended_at": None, "billing_anchor_day": None}
    assert [p.end for p in periods(yearly, "year", "UTC", datetime(2026, 3, 1, tzinfo=UTC))] == [
        datetime(2025, 2, 28, tzinfo=UTC), datetime(2026, 2, 28, tzinfo=UTC), datetime(2027, 2, 28, tzinfo=UTC)]
    # a DST month in New York is one hour short: prorated by elapsed seconds
    ny = {"started_at": datetime(2026, 3, 16, 4, tzinfo=UTC), "ended_at": None, "billing_anchor_day": 1}
    part = periods(ny, "month", "America/New_York", datetime(2026, 5, 1, tzinfo=UTC))[0]
    assert part.fraction == Fraction(16 * 24, 31 * 24 - 1)


def test_dedupe_set_and_rejects():
    catalog = {**CATALOG, "subscriptions": CATALOG["subscriptions"][:1], "credit_grants": []}
    events = [
        event("a", "heavy", "api_call", D(11_000), "2026-06-02T00:00:00Z", "2026-06-03T00:00:00Z"),
        # resent later with another value: dropped
        event("a", "heavy", "api_call", D(99_999), "2026-06-02T00:00:00Z", "2026-06-04T00:00:00Z"),
        # a later row of the file, ingested first: it wins
        event("b", "heavy", "api_call", D(1), "2026-06-02T00:00:00Z", "2026-06-05T00:00:00Z"),
        event("b", "heavy", "api_call", D(2), "2026-06-02T00:00:00Z", "2026-06-04T00:00:00Z"),
        # an invalid winner keeps its valid later copy out
        event("c", "heavy", "api_call", D(-1), "2026-06-02T00:00:00Z", "2026-06-04T00:00:00Z"),
        event("c", "heavy", "api_call", D(5), "2026-06-02T00:00:00Z", "2026-06-05T00:00:00Z"),
        event("d", "heavy", "api_call", D(3), "2026-06-10T00:00:00Z", "2026-06-10T00:04:00Z"),
        event("e", "heavy", "api_call", D(3), "2026-06-10T00:06:00Z", "2026-06-10T00:00:00Z"),
        event("f", "heavy", "API_CALL", D(3), "2026-06-10T00:00:00Z"),
        event("g", "heavy", "api_call", D(3), "2026-06-10T00:00:00Z", action="Increment"),
        event("h", "heavy", "api_call", None, "2026-06-10T00:00:00Z"),
        event("i", "nobody", "api_call", D(3), "2026-06-10T00:00:00Z"),
        event("j", "heavy", "api_call", D(3), "2026-05-10T00:00:00Z"),
    ]
    _, rejects = compute_invoices(catalog, events, "2026-07-01T01:00:00Z")
    assert rejects == {"c": "invalid_value", "e": "future_timestamp", "f": "unknown_meter", "g": "invalid_action",
                       "h": "invalid_value", "i": "unknown_customer", "j": "no_active_subscription"}
    invoices, _ = compute_invoices(catalog, events, "2026-07-01T01:00:00Z")
    assert invoices[0].lines[1].quantity == 11_000 + 2 + 3
    # set: the last set of the period plus the increments after it
    with_set = events[:1] + [
        event("s1", "heavy", "api_call", D(50_000), "2026-06-20T00:00:00Z", action="set"),
        event("s2", "heavy", "api_call", D(7), "2026-06-21T00:00:00Z"),
        event("s0", "heavy", "api_call", D(40_000), "2026-06-20T00:00:00Z", "2026-06-20T00:30:00Z", action="set"),
        event("s3", "heavy", "api_call", D(1), "2026-07-02T00:00:00Z"),
    ]
    invoices, _ = compute_invoices(catalog, with_set, "2026-08-01T01:00:00Z")
    assert [i.lines[1].quantity for i in invoices] == [50_007, 1]  # s0 was ingested before s1


def test_customer_state_survives_a_plan_change():
    events = [
        event("s1", "state", "seats", D(5), "2026-01-10T00:00:00Z"),
        event("v1", "state", "vm", D(1), "2026-01-31T11:00:00Z", properties={"id": "a"}),
        event("v2", "state", "vm", D(1), "2026-01-31T12:00:00Z", properties={"id": "b"}),
        event("v3", "state", "vm", D(0), "2026-02-01T00:00:00Z", properties={"id": "b"}),
        event("v4", "state", "vm", D(0), "2026-02-15T12:00:00Z", properties={"id": "a"}),
        event("g1", "state", "gb", D(10), "2026-01-16T23:00:00Z"),  # Jan 17 00:00 Berlin: half of January
        event("g2", "state", "gb", D(-4), "2026-02-28T23:00:00Z"),
    ]
    invoices, rejects = compute_invoices(CATALOG, events, "2026-04-01T01:00:00Z")
    assert rejects == {}
    subs = by_subscription(invoices)
    jan, feb1 = subs["s_state1"]
    feb2, march = subs["s_state2"]
    lines = lambda invoice: {line.event_name: line.quantity for line in invoice.lines}  # noqa: E731
    assert lines(jan) == {"gb": Fraction(10 * 15, 31), "seats": 5, "vm": 12 + 11}
    assert (feb1.period_start, feb1.period_end) == (
        datetime(2026, 1, 31, 23, tzinfo=UTC), datetime(2026, 2, 14, 23, tzinfo=UTC))
    assert lines(feb1) == {"gb": 10, "seats": 5, "vm": 14 * 24 + 1}
    assert lines(feb2) == {"gb": 10, "seats": 5, "vm": 13}
    assert lines(march) == {"gb": 6, "seats": 5, "vm": 0}
    assert [line.amount_minor for line in march.lines] == [1_200, 1_000, 0]


def test_a_hard_limit_caps_the_quantity_before_included_units():
    """SPEC §15: 1,500 calls, limit 1,000, 100 included, 0.05 each: hard bills 900 × 0.05 = 45.00 on a
    quantity of 1,000; soft and notify bill 1,400 × 0.05 = 70.00."""
    catalog = {
        "meters": [{"event_name": "api_call", "aggregation": "sum"}],
        "plans": [{"plan_id": behavior, "currency": "USD", "interval": "month",
                   "charges": [{"event_name": "api_call", "pricing_model": "per_unit", "unit_price": D("0.05"),
                                "included_units": 100, "usage_limit": 1000, "limit_behavior": behavior}]}
                  for behavior in ("hard", "soft", "notify")],
        "customers": [{"customer_id": behavior, "currency": "USD"} for behavior in ("hard", "soft", "notify")],
        "subscriptions": [{"subscription_id": f"s_{behavior}", "customer_id": behavior, "plan_id": behavior,
                           "started_at": "2026-06-01T00:00:00Z"} for behavior in ("hard", "soft", "notify")],
    }
    events = [event(f"e_{behavior}", behavior, "api_call", D(1_500), "2026-06-05T00:00:00Z")
              for behavior in ("hard", "soft", "notify")]
    invoices, _ = compute_invoices(catalog, events, "2026-07-01T01:00:00Z")
    assert {i.subscription_id: [(line.quantity, line.amount_minor) for line in i.lines] for i in invoices} == {
        "s_hard": [(1_000, 4_500)], "s_soft": [(1_500, 7_000)], "s_notify": [(1_500, 7_000)]}
