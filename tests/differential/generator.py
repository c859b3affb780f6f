"""A seeded generator of billing scenarios: a catalog (plain dicts, as a catalog YAML) and raw events.

`scenario(seed)` returns `Scenario(catalog, events, as_of)`. Everything comes from one
`random.Random(seed)`, so a seed is a reproducible scenario. Ids are lowercase letters and digits of
one length per kind, so their order is the same under any collation; meters start with distinct
letters for the same reason (invoice lines are ordered by event_name).

Every event carries an explicit `ingested_at`, so the dedupe winner never depends on file order:
copies of a reference with a different payload always differ in `ingested_at` or `occurred_at`.
Timestamps are whole multiples of 36 s (0.01 h), so `time_duration` hours are exact decimals.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import yaml
from reference import Catalog, periods

UTC = UTC
WINDOW_START = datetime(2025, 11, 1, tzinfo=UTC)
AS_OF = datetime(2026, 4, 2, 12, tzinfo=UTC)
EVENTS_END = datetime(2026, 4, 2, tzinfo=UTC)
TIMEZONES = ["UTC", "Asia/Tokyo", "America/New_York", "Europe/Berlin"]
CURRENCIES = ["USD", "EUR", "JPY", "KWD"]

# event_name: (aggregation, property, typical period quantity — for tier bounds and included units)
METERS = {
    "api_calls": ("sum", None, 3000),
    "backups": ("count", None, 15),
    "cpu_peak": ("max", None, 80),
    "disk_low": ("min", None, 200),
    "edge_latency": ("average", None, 150),
    "fleet_seats": ("last_during_period", None, 30),
    "guest_seats": ("last_ever", None, 30),
    "host_hours": ("time_duration", "host", 700),
    "inventory_gb": ("weighted_sum", None, 300),
    "joined_users": ("count_unique", "user", 12),
    "kart_payments": ("markup_percentage", None, 20000),
}
STATEFUL = {"guest_seats", "host_hours", "inventory_gb"}
UNIT_PRICES = {
    "USD": ["0.001", "0.0125", "0.05", "0.1", "0.25", "1.5", "0.333"],
    "EUR": ["0.002", "0.015", "0.07", "0.2", "0.49", "2"],
    "JPY": ["0.5", "1", "3", "15", "0.125", "7.7"],
    "KWD": ["0.001", "0.0035", "0.025", "0.4", "1.125"],
}
BASE_FEES = {
    "USD": ["0", "9", "49", "99.99", "12.5"],
    "EUR": ["0", "19", "29.9", "7.45"],
    "JPY": ["0", "1000", "4980", "333"],
    "KWD": ["0", "3.5", "12.125", "0.999"],
}
FIXED_FEES = {"USD": "0.30", "EUR": "0.25", "JPY": "30", "KWD": "0.1"}
GRANT_AMOUNTS = {"USD": ["5", "20", "100", "12.34"], "EUR": ["10", "50", "3.21"],
                 "JPY": ["500", "3000", "12345"], "KWD": ["1.5", "10", "0.125"]}


@dataclass
class Scenario:
    catalog: dict
    events: list[dict]
    as_of: datetime

    def write(self, folder: Path) -> tuple[Path, Path]:
        catalog_path = folder / "catalog.yaml"
        catalog_path.write_text(yaml.safe_dump(_plain(self.catalog), sort_keys=False))
        events_path = folder / "events.jsonl"
        with events_path.open("w") as handle:
            for event in self.events:
                handle.write(json.dumps(_plain(event)) + "\n")
        return catalog_path, events_path


def _plain(value):
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items() if item is not None or key == "up_to"}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value


def _dec(rng: random.Random, low: float | int, high: int, places: int) -> Decimal:
    """A decimal in [low, high] with up to `places` decimals (drawn as an integer: no float)."""
    scale = 10 ** rng.randint(0, places)
    return Decimal(rng.randint(int(low * scale), high * scale)) / scale


def _instant(rng: random.Random, start: datetime, end: datetime, step: int = 36) -> datetime:
    """A random instant in [start, end), a multiple of `step` seconds since the epoch."""
    first = -(-int(start.timestamp()) // step)
    last = (int(end.timestamp()) - 1) // step
    return datetime.fromtimestamp(rng.randint(first, last) * step, UTC)


# ---------------------------------------------------------------------------------------------- catalog


def _charge(rng: random.Random, event_name: str, currency: str) -> dict:
    aggregation, _, scale = METERS[event_name]
    if aggregation == "markup_percentage":
        return {"event_name": event_name, "pricing_model": "percentage",
                "percentage_rate": Decimal(rng.choice(["2.9", "1.5", "0.75", "3.25", "10"])),
                "fixed_fee_per_event": Decimal(rng.choice(["0", FIXED_FEES[currency]]))}
    charge: dict = {"event_name": event_name,
                    "pricing_model": rng.choice(["per_unit", "per_unit", "graduated", "volume", "package"])}
    if rng.random() < 0.5:
        charge["included_units"] = Decimal(rng.randint(1, scale)) if rng.random() < 0.8 else _dec(rng, 0, scale, 2)
    price = lambda: Decimal(rng.choice(UNIT_PRICES[currency]))  # noqa: E731
    model = charge["pricing_model"]
    if model == "per_unit":
        charge["unit_price"] = price()
    elif model == "package":
        charge["unit_price"] = price() * rng.choice([1, 10, 100])
        charge["package_size"] = Decimal(rng.choice([1, 5, 10, 100, 1000, scale // 3 or 1]))
        if rng.random() < 0.2:
            charge["package_size"] = _dec(rng, 1, 20, 1)
    else:
        bounds = sorted({Decimal(rng.randint(1, 2 * scale)) for _ in range(rng.randint(0, 3))})
        charge["tiers"] = []
        for up_to in [*bounds, None]:
            tier = {"up_to": up_to, "unit_price": price()}
            if rng.random() < 0.3:
                tier["flat_fee"] = Decimal(rng.choice(BASE_FEES[currency][1:]))
            charge["tiers"].append(tier)
    # SPEC §15: a limit on the quantity (hard caps what is billed; percentage charges take none),
    # drawn from a generator of its own so that the rest of a seed's scenario is what it was before
    # limits (tests name customers of those scenarios)
    limits = random.Random(repr(rng.getstate()))
    if limits.random() < 0.4:
        charge["usage_limit"] = (Decimal(limits.randint(0, 2 * scale)) if limits.random() < 0.8
                                 else _dec(limits, 0, scale, 2))
        charge["limit_behavior"] = limits.choice(["notify", "soft", "hard", "hard"])
    return charge


def _plans(rng: random.Random) -> list[dict]:
    plans = []
    for currency in CURRENCIES:
        for index, interval in enumerate(["month", "month", "year"]):
            names = rng.sample(sorted(METERS), rng.randint(4, 8))
            plans.append({
                "plan_id": f"{currency.lower()}{interval[0]}{index}",
                "name": f"{currency} {interval}ly {index}",
                "currency": currency,
                "interval": interval,
                "base_fee": Decimal(rng.choice(BASE_FEES[currency])) * (12 if interval == "year" else 1),
                "charges": [_charge(rng, name, currency) for name in names],
            })
    return plans


def _anchor(rng: random.Random) -> int | None:
    roll = rng.random()
    if roll < 0.4:
        return None
    if roll < 0.7:
        return rng.choice([29, 30, 31])
    return rng.randint(1, 28)


def _hour(rng: random.Random, start: datetime, end: datetime) -> datetime:
    return _instant(rng, start, end, 3600)


def _subscriptions(rng: random.Random, customer_id: str, currency: str, plans: list[dict]) -> list[dict]:
    monthly = [p for p in plans if p["currency"] == currency and p["interval"] == "month"]
    yearly = [p for p in plans if p["currency"] == currency and p["interval"] == "year"]
    kind = rng.random()
    sub_id = lambda n: f"s{customer_id[1:]}{n}"  # noqa: E731
    base = lambda n, plan, start, **more: {  # noqa: E731
        "subscription_id": sub_id(n), "customer_id": customer_id, "plan_id": plan["plan_id"],
        "started_at": start, "billing_anchor_day": _anchor(rng), **more}
    if kind < 0.5:  # one monthly subscription
        start = _hour(rng, datetime(2025, 11, 10, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))
        if rng.random() < 0.2:
            start = start.replace(hour=0) if rng.random() < 0.5 else start.replace(day=1, hour=0)
        return [base(1, rng.choice(monthly), start)]
    if kind < 0.75:  # a plan change: one subscription ends as the next starts
        start = _hour(rng, datetime(2025, 11, 10, tzinfo=UTC), datetime(2026, 1, 15, tzinfo=UTC))
        change = _hour(rng, start + timedelta(days=10), datetime(2026, 3, 25, tzinfo=UTC))
        first, second = rng.sample(monthly + yearly, 2)
        return [base(1, first, start, ended_at=change), base(2, second, change)]
    if kind < 0.87:  # a yearly subscription whose first year closes in the window
        start = _hour(rng, datetime(2025, 1, 15, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC))
        sub = base(1, rng.choice(yearly), start)
        sub["billing_anchor_day"] = rng.choice([None, None, start.day, 28, 31])
        return [sub]
    # a cancelled subscription (sometimes ending exactly one grace before as_of)
    start = _hour(rng, datetime(2025, 11, 10, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
    end = (
        AS_OF - timedelta(hours=1)
        if rng.random() < 0.3
        else _hour(rng, start + timedelta(days=5), datetime(2026, 3, 30, tzinfo=UTC))
    )
    return [base(1, rng.choice(monthly), start, ended_at=end)]


# ---------------------------------------------------------------------------------------------- events


def _value(rng: random.Random, event_name: str, state: dict) -> tuple[Decimal | None, dict | None, str | None]:
    """(value, properties, action) of a plausible valid event."""
    aggregation, prop, scale = METERS[event_name]
    if aggregation == "count":
        return None, ({"kind": rng.choice(["full", "diff"])} if rng.random() < 0.5 else None), None
    if aggregation == "count_unique":
        return None, {prop: f"u{rng.randint(1, 25):02d}"} if rng.random() < 0.9 else {"other": "x"}, None
    if aggregation == "time_duration":
        host = f"h{rng.randint(1, 4)}"
        on = state.setdefault(host, False)
        new = (not on) if rng.random() < 0.8 else on
        state[host] = new
        return Decimal(int(new)), {prop: host}, None
    if aggregation == "weighted_sum":
        return _dec(rng, -40, 100, 3), None, None
    if aggregation == "sum":
        roll = rng.random()
        if roll < 0.08:
            return _dec(rng, 0, 2000, 3), None, "set"
        return _dec(rng, 0, 500, 3), None, ("increment" if roll < 0.2 else None)
    if aggregation == "markup_percentage":
        return _dec(rng, 0, 2000, 2), None, None
    if aggregation in ("last_during_period", "last_ever"):
        return Decimal(rng.randint(0, scale)), None, None
    return _dec(rng, 0, scale * 2, 3), None, None


def _events(rng: random.Random, catalog: dict) -> list[dict]:
    reference_catalog = Catalog.from_dict(catalog)
    counter = iter(range(1, 10**6))
    new_ref = lambda: f"e{next(counter):06d}"  # noqa: E731
    events: list[dict] = []

    def emit(customer_id, event_name, at, value=None, properties=None, action=None, delay=None, reference=None):
        if delay is None:
            ingested = max(at, min(at + timedelta(seconds=rng.randint(0, 3 * 86400)), AS_OF - timedelta(minutes=10)))
        else:
            ingested = at + delay
        event = {"reference": new_ref() if reference is None else reference, "customer_id": customer_id,
                 "event_name": event_name, "value": value, "properties": properties, "action": action,
                 "occurred_at": at, "ingested_at": ingested}
        events.append(event)
        return event

    for customer in catalog["customers"]:
        cid = customer["customer_id"]
        subs = reference_catalog.subscriptions_of(cid)
        tz = reference_catalog.customers[cid]["timezone"]
        active = [(max(s["started_at"], WINDOW_START), min(s["ended_at"] or EVENTS_END, EVENTS_END)) for s in subs]
        active = [(a, b) for a, b in active if a < b]
        charged = {c["event_name"] for s in subs for c in reference_catalog.plans[s["plan_id"]]["charges"]}
        busy = rng.random()
        for event_name in sorted(METERS):
            n = rng.randint(0, 3) if event_name not in charged else int(rng.randint(5, 60) * (0.3 + busy))
            if event_name in {"backups", "joined_users", "kart_payments"} and event_name in charged:
                n *= 2
            state: dict = {}
            instants = sorted(_instant(rng, *rng.choice(active)) for _ in range(n)) if active else []
            for at in instants:
                value, properties, action = _value(rng, event_name, state)
                emit(cid, event_name, at, value, properties, action)
        # events exactly on period boundaries, plan changes and starts
        edges = [s["started_at"] for s in subs]
        for sub in subs:
            plan = reference_catalog.plans[sub["plan_id"]]
            edges += [p.end for p in periods(sub, plan["interval"], tz, EVENTS_END)]
        for at in rng.sample(edges, min(len(edges), 4)):
            if WINDOW_START <= at < EVENTS_END:
                event_name = rng.choice(sorted(charged))
                for when in (at, at - timedelta(seconds=36)):
                    if event_name in STATEFUL and not any(
                        s["started_at"] <= when and (s["ended_at"] is None or when < s["ended_at"]) for s in subs
                    ):
                        continue  # R6: a rejected event on a customer-state meter is avoided
                    value, properties, action = _value(rng, event_name, {})
                    emit(cid, event_name, when, value, properties, action)
    _add_duplicates(rng, events)
    _add_invalid(rng, catalog, events, emit)
    return events


def _add_duplicates(rng: random.Random, events: list[dict]) -> None:
    for original in rng.sample(events, len(events) // 15):
        copy = dict(original)
        roll = rng.random()
        if roll < 0.35:  # an exact resend, later
            copy["ingested_at"] = original["ingested_at"] + timedelta(hours=rng.randint(0, 48))
        elif roll < 0.65:  # a conflicting resend, later: dropped
            copy["ingested_at"] = original["ingested_at"] + timedelta(minutes=rng.randint(1, 3000))
            if original["value"] is not None and original["event_name"] != "host_hours":
                copy["value"] = original["value"] + Decimal(rng.randint(1, 99))
            else:
                copy["occurred_at"] = original["occurred_at"] + timedelta(days=rng.randint(1, 20))
                copy["ingested_at"] = max(copy["ingested_at"], copy["occurred_at"])
        elif roll < 0.85:  # the copy later in the file was ingested first: it wins
            copy["ingested_at"] = original["ingested_at"] - timedelta(minutes=rng.randint(1, 600))
            copy["ingested_at"] = max(copy["ingested_at"], original["occurred_at"])
            if copy["ingested_at"] == original["ingested_at"]:
                continue
            if original["value"] is not None and original["event_name"] != "host_hours":
                copy["value"] = original["value"] + Decimal(rng.randint(1, 99))
        else:  # same ingested_at, later occurred_at: the earlier occurrence wins
            copy["occurred_at"] = original["occurred_at"] + timedelta(seconds=36 * rng.randint(1, 50000))
        events.insert(rng.randint(events.index(original) + 1, len(events)), copy)


def _add_invalid(rng: random.Random, catalog: dict, events: list[dict], emit) -> None:
    customers = [c["customer_id"] for c in catalog["customers"]]
    subs = {s["customer_id"]: s for s in catalog["subscriptions"]}
    at = lambda: _instant(rng, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))  # noqa: E731
    for _ in range(3):
        cid = rng.choice(customers)
        emit(cid, "api_calls", at(), Decimal(5), reference="")          # missing_reference
        emit("", "api_calls", at(), Decimal(5))                         # missing_customer
        emit("c99", "api_calls", at(), Decimal(5))                      # unknown_customer
        emit(cid, "Api_calls", at(), Decimal(5))                        # unknown_meter
        emit(cid, "nosuch", at(), Decimal(5))                           # unknown_meter
        when = at()
        emit(cid, "api_calls", when, Decimal(5), delay=-timedelta(minutes=6))   # future_timestamp
        emit(cid, "api_calls", when, Decimal(7), delay=-timedelta(minutes=5))   # exactly 5 min: valid
        emit(cid, "api_calls", at(), None)                              # invalid_value: null
        emit(cid, "cpu_peak", at(), Decimal(-1))                        # invalid_value: negative
        emit(cid, "host_hours", at(), Decimal(2), {"host": "h1"})      # invalid_value: not 0/1
        emit(cid, "inventory_gb", at(), None)                           # invalid_value: null
        emit(cid, "backups", at(), None, action="set")                  # invalid_action
        emit(cid, "api_calls", at(), Decimal(5), action="Increment")    # invalid_action
        emit(cid, "guest_seats", at(), Decimal(3), action="set")        # invalid_action
        start = subs[cid]["started_at"] if cid in subs else None
        if start and start > WINDOW_START + timedelta(days=2):          # no_active_subscription
            emit(cid, "api_calls", start - timedelta(days=1), Decimal(5))
            emit(cid, "backups", start - timedelta(seconds=36), None)
        missing = emit(cid, "api_calls", at(), Decimal(5))              # missing_timestamp
        missing["occurred_at"] = None
    # an invalid winner keeps its valid later copy out
    victim = emit(rng.choice(customers), "cpu_peak", at(), Decimal(-3))
    events.append({**victim, "value": Decimal(3), "ingested_at": victim["ingested_at"] + timedelta(hours=1)})


def _grants(rng: random.Random, catalog: dict) -> list[dict]:
    reference_catalog = Catalog.from_dict(catalog)
    grants = []
    for customer in catalog["customers"]:
        if rng.random() > 0.45:
            continue
        cid, currency = customer["customer_id"], customer["currency"]
        ends = []
        for sub in reference_catalog.subscriptions_of(cid):
            plan = reference_catalog.plans[sub["plan_id"]]
            ends += [p.end for p in periods(sub, plan["interval"], customer.get("timezone") or "UTC", AS_OF)]
        for _ in range(rng.randint(1, 3)):
            grant_currency = currency if rng.random() < 0.9 else rng.choice(CURRENCIES)
            granted = _hour(rng, datetime(2025, 11, 1, tzinfo=UTC), datetime(2026, 3, 15, tzinfo=UTC))
            expires = None if rng.random() < 0.4 else granted + timedelta(days=rng.randint(15, 120))
            if ends and rng.random() < 0.3:  # on a period end: granted_at = end, or expires_at = end
                edge = rng.choice(ends)
                if rng.random() < 0.5:
                    granted = edge
                else:
                    expires = edge
                    granted = min(granted, edge - timedelta(days=20))
            grants.append({"grant_id": f"g{len(grants) + 1:03d}", "customer_id": cid, "currency": grant_currency,
                           "amount": Decimal(rng.choice(GRANT_AMOUNTS[grant_currency])),
                           "granted_at": granted, "expires_at": expires})
    return grants


def _rounding_edges(catalog: dict) -> list[dict]:
    """Customers whose exact line amounts end in exactly half a minor unit, but only when computed
    without an intermediate division: an average of 1/3, a time-weighted average of 1/3, one second
    of `time_duration` (1/3600 h), a base fee prorated by 71/72. Half away from zero gives 1 cent."""
    catalog["plans"].append({
        "plan_id": "usdedge0", "name": "Rounding edges", "currency": "USD", "interval": "month",
        "base_fee": Decimal(9),
        "charges": [
            {"event_name": "edge_latency", "pricing_model": "per_unit", "unit_price": Decimal("0.015")},
            {"event_name": "host_hours", "pricing_model": "per_unit", "unit_price": Decimal(18)},
            {"event_name": "inventory_gb", "pricing_model": "per_unit", "unit_price": Decimal("0.015")},
        ],
    })
    events = []
    for index, started in [(1, datetime(2025, 11, 1, tzinfo=UTC)), (2, datetime(2025, 11, 1, 10, tzinfo=UTC))]:
        cid = f"x{index:02d}"
        catalog["customers"].append({"customer_id": cid, "name": f"Edge {index}", "currency": "USD",
                                     "collection_method": "request_payment"})
        catalog["subscriptions"].append({"subscription_id": f"t{cid[1:]}1", "customer_id": cid,
                                         "plan_id": "usdedge0", "started_at": started, "billing_anchor_day": 1})
        for n, (name, value, at, props) in enumerate([
            ("edge_latency", 0, datetime(2025, 11, 5, tzinfo=UTC), None),
            ("edge_latency", 0, datetime(2025, 11, 6, tzinfo=UTC), None),
            ("edge_latency", 1, datetime(2025, 11, 7, tzinfo=UTC), None),
            ("host_hours", 1, datetime(2025, 11, 10, tzinfo=UTC), {"host": "h1"}),
            ("host_hours", 0, datetime(2025, 11, 10, 0, 0, 1, tzinfo=UTC), {"host": "h1"}),
            ("inventory_gb", 1, datetime(2025, 11, 21, tzinfo=UTC), None),  # 10 of 30 days
            ("inventory_gb", -1, datetime(2025, 12, 1, tzinfo=UTC), None),
        ]):
            events.append({"reference": f"x{index}{n:05d}", "customer_id": cid, "event_name": name,
                           "value": Decimal(value), "properties": props, "action": None,
                           "occurred_at": at, "ingested_at": at + timedelta(minutes=1)})
    return events


# SPEC §12: tax rates (id: jurisdiction, percentage, inclusive) and coupons (percent or per-currency amounts)
TAX_RATES = {"vatde": ("DE", "19", False), "vatred": ("DE", "7", False), "gstau": ("AU", "10", True),
             "salesca": ("US-CA", "7.25", False), "ctjp": ("JP", "10", True)}
PERCENTS_OFF = ["10", "20", "33.33", "50", "100", "2.5"]
AMOUNTS_OFF = {"USD": ["5", "49.99", "500"], "EUR": ["10", "0.5"], "JPY": ["300", "100000"], "KWD": ["1.125", "7"]}


def _discounts_minimums_and_taxes(rng: random.Random, catalog: dict) -> None:
    """Minimums on some plans, tax settings on some customers, coupons and their redemptions, all drawn
    from a generator of their own (after the rest), so that a seed's scenario is otherwise what it was."""
    for plan in catalog["plans"]:
        if rng.random() < 0.3:
            plan["minimum_amount"] = (Decimal(rng.choice(BASE_FEES[plan["currency"]][1:])) * rng.choice([1, 3, 10])
                                      * (12 if plan["interval"] == "year" else 1))
    catalog["tax_rates"] = [
        {"tax_rate_id": rate_id, "display_name": f"Tax {rate_id}", "jurisdiction": jurisdiction,
         "percentage": Decimal(percentage), "inclusive": inclusive}
        for rate_id, (jurisdiction, percentage, inclusive) in TAX_RATES.items()
    ]
    coupons = []
    for duration in ["once", "repeating", "forever"]:
        for _ in range(2):
            coupon = {"coupon_id": f"k{len(coupons) + 1:02d}", "name": f"Coupon {len(coupons) + 1}",
                      "duration": duration}
            if rng.random() < 0.5:
                coupon["percent_off"] = Decimal(rng.choice(PERCENTS_OFF))
            else:
                coupon["currency"] = rng.choice(CURRENCIES)
                coupon["amount_off"] = Decimal(rng.choice(AMOUNTS_OFF[coupon["currency"]]))
            if duration == "repeating":
                coupon["duration_in_periods"] = rng.randint(1, 4)
            coupons.append(coupon)
    catalog["coupons"] = coupons
    redemptions = []
    for customer in catalog["customers"]:
        if rng.random() < 0.4:
            customer["tax_rate_ids"] = rng.sample(sorted(TAX_RATES), rng.randint(1, 2))
            customer["tax_exempt"] = rng.choice(["none", "none", "none", "exempt", "reverse_charge"])
        if rng.random() < 0.4:
            own = [subscription["subscription_id"] for subscription in catalog["subscriptions"]
                   if subscription["customer_id"] == customer["customer_id"]]
            for _ in range(rng.randint(1, 3)):
                redemptions.append({
                    "redemption_id": f"r{len(redemptions) + 1:03d}", "coupon_id": rng.choice(coupons)["coupon_id"],
                    "customer_id": customer["customer_id"],
                    "subscription_id": rng.choice(own) if own and rng.random() < 0.3 else None,
                    "redeemed_at": _hour(rng, datetime(2025, 10, 15, tzinfo=UTC), datetime(2026, 3, 15, tzinfo=UTC)),
                })
    catalog["coupon_redemptions"] = redemptions


def scenario(seed: int, customers: int = 30) -> Scenario:
    rng = random.Random(seed)
    plans = _plans(rng)
    used_meters = sorted({c["event_name"] for p in plans for c in p["charges"]} | set(METERS))
    catalog: dict = {
        "meters": [
            {"event_name": name, "display_name": name.replace("_", " ").title(),
             "aggregation": METERS[name][0], "property": METERS[name][1]}
            for name in used_meters
        ],
        "plans": plans,
        "customers": [],
        "subscriptions": [],
    }
    for index in range(1, customers + 1):
        cid = f"c{index:02d}"
        currency = rng.choice(CURRENCIES)
        catalog["customers"].append({
            "customer_id": cid, "name": f"Customer {index}", "currency": currency,
            "timezone": rng.choice(TIMEZONES), "collection_method": "request_payment",
        })
        catalog["subscriptions"] += _subscriptions(rng, cid, currency, plans)
    catalog["credit_grants"] = _grants(rng, catalog)
    events = _events(rng, catalog)
    events += _rounding_edges(catalog)
    _discounts_minimums_and_taxes(random.Random(f"invoice math {seed}"), catalog)
    return Scenario(catalog, events, AS_OF)
