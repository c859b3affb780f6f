"""An independent, deliberately plain reading of /work/shared/SPEC.md (§2–§6) used as a test oracle.

Given a catalog (the plain dicts of a catalog YAML), raw usage events and `as_of` + grace, it computes
the invoices a single close run must issue. It shares no code with the pipeline (it was written
without reading the dbt models).

Arithmetic is exact: inputs are `Decimal`; every intermediate value is a `fractions.Fraction` built
from them (exact rationals — stricter than Decimal, since averages, time-weighted averages, hours and
base-fee prorations divide), and an amount is rounded once, at the line, half away from zero to the
currency's minor unit. No floats anywhere.

Readings of SPEC where it leaves room (the generator avoids the ones marked *avoided*):

 R1  Dedupe: the winner of a reference is the first row by (`ingested_at`, `occurred_at` nulls last);
     rows still tied are broken by file order (*avoided*: the generator never ties two copies with a
     different payload). Rows with a blank/null reference are not deduped (each is
     `missing_reference`).
 R2  "Blank" = null or only whitespace. A blank `action` counts as missing, i.e. `increment`
     (*avoided*). Actions are case-sensitive, so `Increment` is `invalid_action`.
 R3  `invalid_value`: value null where the aggregation reads `value` (every aggregation except
     `count` and `count_unique`); a negative value is invalid for every aggregation but
     `weighted_sum` — read literally, also for `count`/`count_unique` which ignore `value`
     (*avoided*: the generator sends no value on those meters); `time_duration` needs value 0 or 1
     (numeric equality, so 1.0 is 1).
 R4  `future_timestamp`: `occurred_at > ingested_at + 5 min` (exactly 5 min is fine).
 R5  Validity does not depend on the plan: an event on a meter the customer's plan does not charge
     is valid (kept for analytics) and, for the customer-state aggregations (`last_ever`,
     `time_duration`, `weighted_sum`), it moves that state.
 R6  Customer state (`last_ever`, `time_duration`, `weighted_sum`) is built from the customer's
     *valid* deduped events only, across all of the customer's subscriptions. Rejected events (e.g.
     `no_active_subscription` before the first subscription) never move it.
 R7  Periods: boundaries are local midnight on day min(anchor, days in month) of every month (year:
     of the month of the local `started_at`, every year). The first period is [started_at, first
     boundary strictly after started_at); when `started_at` is a boundary it is a regular period.
     The last ends at `ended_at` (a regular period if `ended_at` is a boundary). A period is invoiced
     iff `as_of >= end + grace`.
 R8  Proration: "seconds" are elapsed (UTC) seconds, so a DST month is 1 h shorter/longer. The
     regular period containing a partial one is [last boundary <= its start, next boundary). The
     base-fee line's quantity is that fraction (1 for a full period); the line is omitted when the
     plan's fee is 0.
 R9  Every plan charge yields a usage line on every invoice, also with quantity 0 (amount 0);
     a line's quantity is the aggregated `q`, not `q'`. Meters the plan does not charge yield none.
 R10 Empty period: every aggregation gives 0 (also `last_ever` with no event ever, `weighted_sum`
     with no delta ever). `time_duration` resources are keyed by the text of
     `properties ->> property` (a missing key is its own "null" resource — *avoided*).
     `time_duration` quantity is in hours = on-seconds / 3600.
 R11 `weighted_sum`: the gauge at time t is the sum of deltas with `occurred_at <= t` (an event
     takes effect at its instant); quantity = ∫ gauge dt over [start, end) / (end - start) seconds.
 R12 `percentage` pricing: quantity = Σ value of the period's events, amount =
     Σ value × rate / 100 + fixed_fee_per_event × (number of events). Used only with
     `markup_percentage` meters (*avoided* otherwise). `included_units` ignored.
 R13 `volume`: tiers whose `up_to` is null are infinite; the first tier with `q' <= up_to` prices
     all units plus its flat fee; `q' = 0` → 0 (no flat fee). `graduated`: tier i covers
     (up_to[i-1], up_to[i]]; a tier's flat fee is added only when its slice is > 0.
     `package`: ceil(q' / package_size) × unit_price (0 when q' = 0).
 R14 Credits: grant amounts are in major units and must be whole minor units (*avoided*
     otherwise). Eligible: same customer, same currency as the invoice, `granted_at < period_end`
     and (`expires_at` null or `period_end < expires_at`). Order: `expires_at` (null = never, last),
     then `granted_at`, then `grant_id`. Applied up to the subtotal, balances carry across the
     run's invoices in issue order. A credit line (amount = -credits) is present only when
     credits > 0; total = subtotal - credits.
 R15 Issue order: (period_end, period_start, subscription_id); numbers INV-000001… gapless,
     starting after the invoices already issued (`first_number`).
 R16 Line order: base fee, then usage lines by event_name, then the credit line.
 R17 Usage limits (§15): a `hard` limit caps q before anything else, q = min(q, usage_limit), and
     the line's quantity is that q; `notify` and `soft` (the default) bill as if there were none.

A one-off probe of the pipeline (not kept as a test) found it agrees with R1 (a full tie: the first
row of the file wins), R2 (blank action = increment), R3 (negative value on count/count_unique is
invalid_value), R6 (rejected events move no state), R10 (a missing time_duration key is its own
resource; 1.0 is "on"), `count_unique` counting '' and treating 1 and "1" as one value, and R14
(the catalog refuses grants finer than the minor unit). It differs from R12 outside the avoided
case: `percentage` on a `sum` meter with a `set` shows quantity = the set-aware sum but amount from
the raw Σ value of every event.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

UTC = UTC
MINOR_DIGITS = {"USD": 2, "EUR": 2, "JPY": 0, "KWD": 3, "BHD": 3}
# Aggregations that read `value` (R3).
READS_VALUE = {
    "sum", "max", "min", "average", "last_during_period", "last_ever",
    "time_duration", "weighted_sum", "markup_percentage",
}
CUSTOMER_STATE = {"last_ever", "time_duration", "weighted_sum"}
FUTURE_TOLERANCE = timedelta(minutes=5)


# --------------------------------------------------------------------------------------------
# small helpers


def frac(value: Any) -> Fraction:
    """An exact rational from a Decimal/int/str (never a float)."""
    if isinstance(value, float):
        raise TypeError("floats are not money")
    if isinstance(value, Fraction):
        return value
    return Fraction(Decimal(str(value)) if isinstance(value, str) else value)


def blank(text: Any) -> bool:
    return text is None or (isinstance(text, str) and text.strip() == "")


def ts(value: Any) -> datetime | None:
    """A timezone-aware datetime from a datetime or an ISO string (blank → None)."""
    if blank(value):
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"naive timestamp {value!r}")
    return parsed.astimezone(UTC)


def seconds(delta: timedelta) -> Fraction:
    return Fraction(delta // timedelta(microseconds=1), 1_000_000)


def round_half_away(amount: Fraction, digits: int) -> int:
    """`amount` (major units) in minor units, rounded half away from zero."""
    scaled = amount * 10**digits
    magnitude = abs(scaled)
    whole = magnitude.numerator // magnitude.denominator
    if magnitude - whole >= Fraction(1, 2):
        whole += 1
    return whole if scaled >= 0 else -whole


def minor_exact(amount: Any, currency: str) -> int:
    scaled = frac(amount) * 10 ** MINOR_DIGITS[currency]
    if scaled.denominator != 1:
        raise ValueError(f"{amount} {currency} is not a whole number of minor units (R14)")
    return int(scaled)


def json_text(value: Any) -> str | None:
    """`properties ->> key` as PostgreSQL renders it (strings as is, the rest as JSON)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --------------------------------------------------------------------------------------------
# §2 events


@dataclass
class Event:
    reference: str | None
    customer_id: str | None
    event_name: str | None
    value: Fraction | None
    properties: dict | None
    action: str | None
    occurred_at: datetime | None
    ingested_at: datetime
    file_order: int
    subscription_id: str | None = None
    reject_reason: str | None = None

    @property
    def sort_key(self):
        """§4 order: occurred_at, ingested_at, reference."""
        return (self.occurred_at, self.ingested_at, self.reference)


def dedupe(events: list[Event]) -> list[Event]:
    """The winner of every reference (R1), in file order; blank references pass through."""
    winners: dict[str, Event] = {}
    passthrough: list[Event] = []
    far = datetime.max.replace(tzinfo=UTC)
    for event in events:
        if blank(event.reference):
            passthrough.append(event)
            continue
        current = winners.get(event.reference)
        key = (event.ingested_at, event.occurred_at or far, event.file_order)
        if current is None or key < (current.ingested_at, current.occurred_at or far, current.file_order):
            winners[event.reference] = event
    return sorted([*winners.values(), *passthrough], key=lambda e: e.file_order)


def duplicates(events: list[Event]) -> list[tuple[str, bool]]:
    """(reference, is_conflicting) of every dropped copy: a copy conflicts when its payload (customer,
    event name, value, properties, action, occurred_at) differs from the winner's."""
    winners = {e.reference: e for e in dedupe(events) if not blank(e.reference)}
    payload = lambda e: (e.customer_id, e.event_name, e.value, e.properties, e.action, e.occurred_at)  # noqa: E731
    return sorted(
        (e.reference, payload(e) != payload(winners[e.reference]))
        for e in events
        if not blank(e.reference) and winners[e.reference] is not e
    )


def reject_reason(event: Event, catalog: Catalog) -> str | None:
    """The first reason of §2's list that applies (R2–R4), or None; sets the subscription."""
    if blank(event.reference):
        return "missing_reference"
    if blank(event.customer_id):
        return "missing_customer"
    if event.customer_id not in catalog.customers:
        return "unknown_customer"
    meter = catalog.meters.get(event.event_name) if event.event_name is not None else None
    if meter is None:
        return "unknown_meter"
    if event.occurred_at is None:
        return "missing_timestamp"
    if event.occurred_at > event.ingested_at + FUTURE_TOLERANCE:
        return "future_timestamp"
    aggregation = meter["aggregation"]
    if event.value is None and aggregation in READS_VALUE:
        return "invalid_value"
    if event.value is not None and event.value < 0 and aggregation != "weighted_sum":
        return "invalid_value"
    if aggregation == "time_duration" and event.value not in (0, 1):
        return "invalid_value"
    action = "increment" if blank(event.action) else event.action
    if action not in ("increment", "set") or (action == "set" and aggregation != "sum"):
        return "invalid_action"
    for subscription in catalog.subscriptions_of(event.customer_id):
        if subscription["started_at"] <= event.occurred_at and (
            subscription["ended_at"] is None or event.occurred_at < subscription["ended_at"]
        ):
            event.subscription_id = subscription["subscription_id"]
            return None
    return "no_active_subscription"


# --------------------------------------------------------------------------------------------
# catalog


@dataclass
class Catalog:
    meters: dict[str, dict]
    plans: dict[str, dict]
    customers: dict[str, dict]
    subscriptions: list[dict]
    grants: list[dict]
    coupons: dict[str, dict] = field(default_factory=dict)
    redemptions: list[dict] = field(default_factory=list)
    tax_rates: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, document: dict) -> Catalog:
        meters = {m["event_name"]: dict(m) for m in document.get("meters", [])}
        plans = {}
        for plan in document.get("plans", []):
            plan = dict(plan)
            plan["base_fee"] = frac(plan.get("base_fee") or 0)
            plan["minimum_amount"] = None if plan.get("minimum_amount") is None else frac(plan["minimum_amount"])
            charges = []
            for charge in plan.get("charges") or []:
                charge = dict(charge)
                for key in ("unit_price", "package_size", "percentage_rate"):
                    charge[key] = None if charge.get(key) is None else frac(charge[key])
                charge["included_units"] = frac(charge.get("included_units") or 0)
                charge["usage_limit"] = None if charge.get("usage_limit") is None else frac(charge["usage_limit"])
                charge["fixed_fee_per_event"] = frac(charge.get("fixed_fee_per_event") or 0)
                charge["tiers"] = [
                    {"up_to": None if t.get("up_to") is None else frac(t["up_to"]),
                     "unit_price": frac(t["unit_price"]), "flat_fee": frac(t.get("flat_fee") or 0)}
                    for t in charge.get("tiers") or []
                ]
                charges.append(charge)
            plan["charges"] = charges
            plans[plan["plan_id"]] = plan
        customers = {}
        for customer in document.get("customers", []):
            customer = dict(customer)
            customer["timezone"] = customer.get("timezone") or "UTC"
            customer["tax_rate_ids"] = customer.get("tax_rate_ids") or []
            customer["tax_exempt"] = customer.get("tax_exempt") or "none"
            customers[customer["customer_id"]] = customer
        subscriptions = []
        for subscription in document.get("subscriptions", []):
            subscription = dict(subscription)
            subscription["started_at"] = ts(subscription["started_at"])
            subscription["ended_at"] = ts(subscription.get("ended_at"))
            subscription["billing_anchor_day"] = subscription.get("billing_anchor_day")
            subscriptions.append(subscription)
        grants = []
        for grant in document.get("credit_grants", []):
            grant = dict(grant)
            grant["granted_at"] = ts(grant["granted_at"])
            grant["expires_at"] = ts(grant.get("expires_at"))
            grant["currency"] = grant["currency"].upper()
            grants.append(grant)
        coupons = {}
        for coupon in document.get("coupons", []):
            coupon = dict(coupon)
            for key in ("percent_off", "amount_off"):
                coupon[key] = None if coupon.get(key) is None else frac(coupon[key])
            coupon["currency"] = (coupon.get("currency") or "").upper() or None
            coupons[coupon["coupon_id"]] = coupon
        redemptions = sorted(
            ({**r, "redeemed_at": ts(r["redeemed_at"]), "subscription_id": r.get("subscription_id")}
             for r in document.get("coupon_redemptions", [])),
            key=lambda r: (r["redeemed_at"], r["redemption_id"]),
        )
        tax_rates = {rate["tax_rate_id"]: {**rate, "percentage": frac(rate["percentage"]),
                                           "inclusive": bool(rate.get("inclusive"))}
                     for rate in document.get("tax_rates", [])}
        return cls(meters, plans, customers, subscriptions, grants, coupons, redemptions, tax_rates)

    def subscriptions_of(self, customer_id: str) -> list[dict]:
        return [s for s in self.subscriptions if s["customer_id"] == customer_id]


# --------------------------------------------------------------------------------------------
# §3 periods


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime
    regular_start: datetime
    regular_end: datetime

    @property
    def fraction(self) -> Fraction:
        return seconds(self.end - self.start) / seconds(self.regular_end - self.regular_start)


def _days_in_month(year: int, month: int) -> int:
    following = date(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


def _boundary(year: int, month: int, anchor: int, zone: ZoneInfo) -> datetime:
    day = min(anchor, _days_in_month(year, month))
    return datetime(year, month, day, tzinfo=zone).astimezone(UTC)


def boundaries(subscription: dict, interval: str, zone_name: str) -> Iterable[datetime]:
    """Every period boundary from the one at or before `started_at` on, ascending (R7)."""
    zone = ZoneInfo(zone_name)
    local_start = subscription["started_at"].astimezone(zone)
    anchor = subscription.get("billing_anchor_day") or local_start.day
    if interval == "month":
        index = local_start.year * 12 + local_start.month - 1 - 1  # the month before, to be sure
        step = 1
    elif interval == "year":
        index = (local_start.year - 1) * 12 + local_start.month - 1
        step = 12
    else:
        raise ValueError(interval)
    previous = None
    while True:
        year, month0 = divmod(index, 12)
        boundary = _boundary(year, month0 + 1, anchor, zone)
        if previous is not None and boundary <= previous:
            raise AssertionError("boundaries must increase")
        previous = boundary
        yield boundary
        index += step


def periods(subscription: dict, interval: str, zone_name: str, until: datetime) -> list[Period]:
    """The subscription's periods that start before `until`."""
    started, ended = subscription["started_at"], subscription["ended_at"]
    result: list[Period] = []
    regular_start = None
    start = started
    for boundary in boundaries(subscription, interval, zone_name):
        if boundary <= started:
            regular_start = boundary
            continue
        assert regular_start is not None
        if start >= until:
            break
        if ended is not None and ended <= boundary:
            result.append(Period(start, ended, regular_start, boundary))
            break
        result.append(Period(start, boundary, regular_start, boundary))
        start = regular_start = boundary
    return result


# --------------------------------------------------------------------------------------------
# §4 aggregation


def aggregate(meter: dict, period: Period, period_events: list[Event], history: list[Event]) -> tuple[Fraction, int]:
    """(quantity, number of events) for one subscription × meter × period.

    `period_events` are the valid events attributed to this subscription and period; `history` all
    valid events of the customer on the meter (for customer state), both in §4 order."""
    aggregation = meter["aggregation"]
    values = [e.value for e in period_events]
    count = len(period_events)
    if aggregation == "count":
        return Fraction(count), count
    if aggregation in ("sum", "markup_percentage"):
        total = Fraction(0)
        for event in period_events:
            total = event.value if event.action == "set" else total + event.value
        return total, count
    if aggregation == "count_unique":
        distinct = {json_text((e.properties or {}).get(meter["property"])) for e in period_events}
        distinct.discard(None)
        return Fraction(len(distinct)), count
    if aggregation == "max":
        return (max(values) if values else Fraction(0)), count
    if aggregation == "min":
        return (min(values) if values else Fraction(0)), count
    if aggregation == "average":
        return (sum(values, Fraction(0)) / len(values) if values else Fraction(0)), count
    if aggregation == "last_during_period":
        return (values[-1] if values else Fraction(0)), count
    if aggregation == "last_ever":
        earlier = [e for e in history if e.occurred_at < period.end]
        return (earlier[-1].value if earlier else Fraction(0)), count
    if aggregation == "time_duration":
        return _hours_on(meter["property"], period, history), count
    if aggregation == "weighted_sum":
        return _time_weighted_average(period, history), count
    raise ValueError(f"unknown aggregation {aggregation}")


def _hours_on(key: str, period: Period, history: list[Event]) -> Fraction:
    switches: dict[str | None, list[tuple[datetime, bool]]] = {}
    for event in history:
        if event.occurred_at >= period.end:
            break
        resource = json_text((event.properties or {}).get(key))
        switches.setdefault(resource, []).append((event.occurred_at, event.value == 1))
    on_seconds = Fraction(0)
    for changes in switches.values():
        for (at, on), following in zip(changes, [*changes[1:], (period.end, False)], strict=True):
            if not on:
                continue
            lo, hi = max(at, period.start), min(following[0], period.end)
            if hi > lo:
                on_seconds += seconds(hi - lo)
    return on_seconds / 3600


def _time_weighted_average(period: Period, history: list[Event]) -> Fraction:
    gauge = Fraction(0)
    area = Fraction(0)
    cursor = period.start
    for event in history:
        if event.occurred_at >= period.end:
            break
        if event.occurred_at > cursor:
            area += gauge * seconds(event.occurred_at - cursor)
            cursor = event.occurred_at
        gauge += event.value
    area += gauge * seconds(period.end - cursor)
    return area / seconds(period.end - period.start)


# --------------------------------------------------------------------------------------------
# §5 rating


def rate(charge: dict, quantity: Fraction, count: int) -> Fraction:
    """The line amount in major units, before rounding."""
    model = charge["pricing_model"]
    if model == "percentage":
        return quantity * charge["percentage_rate"] / 100 + charge["fixed_fee_per_event"] * count
    billable = max(quantity - charge["included_units"], Fraction(0))
    if model == "per_unit":
        return billable * charge["unit_price"]
    if model == "package":
        if billable == 0:
            return Fraction(0)
        packages = -(-billable // charge["package_size"])  # ceil
        return packages * charge["unit_price"]
    tiers = sorted(charge["tiers"], key=lambda t: (t["up_to"] is None, t["up_to"] or 0))
    if model == "graduated":
        amount, lower = Fraction(0), Fraction(0)
        for tier in tiers:
            upper = billable if tier["up_to"] is None else min(billable, tier["up_to"])
            slice_ = upper - lower
            if slice_ > 0:
                amount += slice_ * tier["unit_price"] + tier["flat_fee"]
            if tier["up_to"] is not None:
                lower = max(lower, tier["up_to"])
        return amount
    if model == "volume":
        if billable == 0:
            return Fraction(0)
        for tier in tiers:
            if tier["up_to"] is None or billable <= tier["up_to"]:
                return billable * tier["unit_price"] + tier["flat_fee"]
        raise AssertionError("the last tier must be unbounded")
    raise ValueError(f"unknown pricing model {model}")


# --------------------------------------------------------------------------------------------
# §6 invoices


@dataclass
class Line:
    kind: str
    event_name: str | None
    quantity: Fraction | None
    amount_minor: int

    @property
    def exact_quantity(self) -> bool:
        """Whether `numeric` can hold the quantity exactly (else a division had to truncate it)."""
        return self.quantity is None or 10**40 % self.quantity.denominator == 0


@dataclass
class Invoice:
    invoice_number: str
    subscription_id: str
    customer_id: str
    period_start: datetime
    period_end: datetime
    currency: str
    lines: list[Line] = field(default_factory=list)
    subtotal_minor: int = 0
    credits_minor: int = 0
    total_minor: int = 0


def parse_events(raw_events: list[dict]) -> list[Event]:
    return [
        Event(
            reference=e.get("reference"),
            customer_id=e.get("customer_id"),
            event_name=e.get("event_name"),
            value=None if blank(e.get("value")) else frac(e["value"]),
            properties=e.get("properties"),
            action=e.get("action"),
            occurred_at=ts(e.get("occurred_at")),
            ingested_at=ts(e["ingested_at"]),
            file_order=index,
        )
        for index, e in enumerate(raw_events)
    ]


def compute_invoices(
    catalog_document: dict,
    raw_events: list[dict],
    as_of: datetime | str,
    grace: timedelta = timedelta(hours=1),
    first_number: int = 1,
) -> tuple[list[Invoice], dict[str, str]]:
    """The invoices one close run at `as_of` issues, and the reject reason of every rejected winner
    (by reference, blank references as `#<file order>`)."""
    catalog = Catalog.from_dict(catalog_document)
    as_of = ts(as_of)
    events = parse_events(raw_events)
    valid: list[Event] = []
    rejects: dict[str, str] = {}
    for event in dedupe(events):
        reason = reject_reason(event, catalog)
        if reason is None:
            valid.append(event)
        else:
            event.reject_reason = reason
            rejects[event.reference if not blank(event.reference) else f"#{event.file_order}"] = reason
    valid.sort(key=lambda e: e.sort_key)
    history: dict[tuple[str, str], list[Event]] = {}
    for event in valid:
        history.setdefault((event.customer_id, event.event_name), []).append(event)

    drafts = []
    for subscription in catalog.subscriptions:
        plan = catalog.plans[subscription["plan_id"]]
        customer = catalog.customers[subscription["customer_id"]]
        for period in periods(subscription, plan["interval"], customer["timezone"], as_of):
            if as_of >= period.end + grace:
                drafts.append((period.end, period.start, subscription["subscription_id"], subscription, plan, period))
    drafts.sort(key=lambda d: d[:3])

    balances = {g["grant_id"]: minor_exact(g["amount"], g["currency"]) for g in catalog.grants}
    covered = _covered_periods(catalog, as_of)
    invoices = []
    for number, (_, _, _, subscription, plan, period) in enumerate(drafts, start=first_number):
        currency = plan["currency"].upper()
        digits = MINOR_DIGITS[currency]
        invoice = Invoice(
            invoice_number=f"INV-{number:06d}",
            subscription_id=subscription["subscription_id"],
            customer_id=subscription["customer_id"],
            period_start=period.start,
            period_end=period.end,
            currency=currency,
        )
        if plan["base_fee"] != 0:
            invoice.lines.append(Line(
                "base_fee", None, period.fraction, round_half_away(plan["base_fee"] * period.fraction, digits),
            ))
        for charge in sorted(plan["charges"], key=lambda c: c["event_name"]):
            meter = catalog.meters[charge["event_name"]]
            in_period = [
                e for e in history.get((subscription["customer_id"], charge["event_name"]), [])
                if e.subscription_id == subscription["subscription_id"] and period.start <= e.occurred_at < period.end
            ]
            quantity, count = aggregate(
                meter, period, in_period, history.get((subscription["customer_id"], charge["event_name"]), [])
            )
            if charge.get("limit_behavior") == "hard" and charge["usage_limit"] is not None:
                quantity = min(quantity, charge["usage_limit"])
            invoice.lines.append(Line(
                "usage", charge["event_name"], quantity, round_half_away(rate(charge, quantity, count), digits),
            ))
        invoice.subtotal_minor = sum(line.amount_minor for line in invoice.lines)
        before_credits = _discounts_minimum_and_tax(
            catalog, invoice, plan, period, covered.get((subscription["subscription_id"], period.start), []))
        grants = sorted(
            (
                g for g in catalog.grants
                if g["customer_id"] == subscription["customer_id"] and g["currency"] == currency
                and g["granted_at"] < period.end and (g["expires_at"] is None or period.end < g["expires_at"])
            ),
            key=lambda g: (g["expires_at"] is None, g["expires_at"] or period.end, g["granted_at"], g["grant_id"]),
        )
        wanted = max(before_credits, 0)
        for grant in grants:
            given = min(wanted, balances[grant["grant_id"]])
            balances[grant["grant_id"]] -= given
            wanted -= given
            invoice.credits_minor += given
        if invoice.credits_minor:
            invoice.lines.append(Line("credit", None, None, -invoice.credits_minor))
        invoice.total_minor = before_credits - invoice.credits_minor
        invoices.append(invoice)
    return invoices, rejects


# --------------------------------------------------------------------------------------------
# §12 discounts, minimum commitments, taxes


def _covered_periods(catalog: Catalog, as_of: datetime) -> dict[tuple[str, datetime], list[dict]]:
    """(subscription_id, period start) → the redemptions that apply to it, in redemption order: each
    covers the first (once), first N (repeating) or all (forever) periods of its scope that end after
    it was redeemed, counted across the scope's subscriptions in order of period end."""
    covered: dict[tuple[str, datetime], list[dict]] = {}
    for redemption in catalog.redemptions:
        coupon = catalog.coupons[redemption["coupon_id"]]
        scope = []
        for subscription in catalog.subscriptions_of(redemption["customer_id"]):
            if redemption["subscription_id"] not in (None, subscription["subscription_id"]):
                continue
            plan = catalog.plans[subscription["plan_id"]]
            zone = catalog.customers[subscription["customer_id"]]["timezone"]
            scope += [(period.end, period.start, subscription["subscription_id"])
                      for period in periods(subscription, plan["interval"], zone, as_of)
                      if period.end > redemption["redeemed_at"]]
        count = {"once": 1, "repeating": coupon.get("duration_in_periods"), "forever": None}[coupon["duration"]]
        for _, start, subscription_id in sorted(scope)[:count]:
            covered.setdefault((subscription_id, start), []).append({**redemption, "coupon": coupon})
    return covered


def _discounts_minimum_and_tax(catalog: Catalog, invoice: Invoice, plan: dict, period: Period,
                               redemptions: list[dict]) -> int:
    """Append the discount, minimum and tax lines to the invoice; returns its total before credits."""
    digits = MINOR_DIGITS[invoice.currency]
    remaining = invoice.subtotal_minor
    for redemption in redemptions:
        coupon = redemption["coupon"]
        if remaining <= 0:
            break
        if coupon["percent_off"] is not None:
            taken = round_half_away(remaining * coupon["percent_off"] / 100, 0)
        elif coupon["currency"] == invoice.currency:
            taken = min(round_half_away(coupon["amount_off"], digits), remaining)
        else:
            continue
        if taken:
            invoice.lines.append(Line("discount", redemption["redemption_id"], None, -taken))
            remaining -= taken
    taxable = remaining
    if plan["minimum_amount"] is not None and remaining > 0:
        minimum = round_half_away(plan["minimum_amount"] * period.fraction, digits)
        if minimum > remaining:
            invoice.lines.append(Line("minimum_commitment", None, None, minimum - remaining))
            taxable = minimum
    customer = catalog.customers[invoice.customer_id]
    exclusive = 0
    if customer["tax_exempt"] == "none" and taxable > 0:
        for tax_rate_id in customer["tax_rate_ids"]:
            rate = catalog.tax_rates[tax_rate_id]
            percentage = rate["percentage"]
            tax = round_half_away(taxable * percentage / (100 + percentage if rate["inclusive"] else 100), 0)
            invoice.lines.append(Line("tax", tax_rate_id, None, tax))
            exclusive += 0 if rate["inclusive"] else tax
    return taxable + exclusive
