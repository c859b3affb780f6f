"""Mid-period webhooks (SPEC §8, §15): overage alerts, usage limits reached, daily usage snapshots,
rejected-event reports.

Each event's id is derived from what it is about, so every hourly run may try again and the
outbox keeps the first: one alert per subscription × period × meter × threshold, one limit reached
per subscription × period × meter, one snapshot per subscription per day, one rejected-events
report per pipeline window.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime

from psycopg.rows import dict_row

from billing.warehouse import connect
from billing.webhooks.outbox import enqueue_event, enqueued_subjects

SUBSCRIBER_OVERAGE = "billing.subscriber_overage"
SUBSCRIBER_LIMIT_REACHED = "billing.subscriber_limit.reached"
SUBSCRIBER_USAGE = "billing.subscriber_usage"
EVENTS_REJECTED = "billing.events.rejected"
EXAMPLES_PER_REASON = 3

# Thresholds (percent of included units) the current usage has reached.
CROSSED_THRESHOLDS = """
select usage.*, threshold
from billing_marts.customer_usage_current_period as usage
inner join raw.plan_charges as charges
    on usage.plan_id = charges.plan_id and usage.event_name = charges.event_name
cross join lateral unnest(charges.alert_thresholds) as threshold
where usage.included_units > 0
    and usage.quantity * 100 >= usage.included_units * threshold
order by usage.subscription_id, usage.event_name, threshold
"""

# Limits the current usage has reached; the mart decides what "reached" means, for every behavior.
REACHED_LIMITS = """
select * from billing_marts.customer_entitlements
where is_limit_reached
order by subscription_id, event_name
"""

REJECTED_IN_WINDOW = """
select reject_reason, reference, customer_id, event_name, value, occurred_at, ingested_at
from billing_marts.fct_rejected_usage_events
where ingested_at > %(since)s and ingested_at <= %(until)s
order by reject_reason, ingested_at, reference
"""


def announce_overages() -> int:
    """`billing.subscriber_overage` for every threshold crossed this period; returns how many rows qualified."""
    return _announce_each(
        SUBSCRIBER_OVERAGE, CROSSED_THRESHOLDS,
        subject=lambda usage: [usage["subscription_id"], usage["period_start"].isoformat(), usage["event_name"],
                               str(usage["threshold"])],
        data=lambda usage: {**_usage_payload(usage), "threshold_percent": usage["threshold"]},
    )


def announce_limits_reached() -> int:
    """`billing.subscriber_limit.reached` for every usage limit reached this period; returns how many rows qualified."""
    return _announce_each(
        SUBSCRIBER_LIMIT_REACHED, REACHED_LIMITS,
        subject=lambda entitlement: [entitlement["subscription_id"], entitlement["period_start"].isoformat(),
                                     entitlement["event_name"]],
        data=lambda entitlement: {key: entitlement[key] for key in (
            "customer_id", "subscription_id", "event_name", "period_start", "period_end", "as_of", "usage",
            "usage_limit", "limit_behavior", "state")},
    )


def announce_usage_snapshots() -> int:
    """One `billing.subscriber_usage` a day per active subscription; returns the subscriptions seen."""
    with connect() as connection:
        rows = connection.cursor(row_factory=dict_row).execute(
            "select * from billing_marts.customer_usage_current_period order by subscription_id, event_name"
        ).fetchall()
        by_subscription = defaultdict(list)
        for row in rows:
            by_subscription[row["subscription_id"]].append(row)
        subjects = {subscription_id: f"{subscription_id}/{meters[0]['as_of']:%Y-%m-%d}"
                    for subscription_id, meters in by_subscription.items()}
        # NOTE: every hourly run but the day's first finds each snapshot in the outbox already.
        announced = enqueued_subjects(connection, SUBSCRIBER_USAGE, list(subjects.values()))
        for subscription_id, meters in by_subscription.items():
            if subjects[subscription_id] in announced:
                continue
            first = meters[0]
            enqueue_event(
                connection,
                event_type=SUBSCRIBER_USAGE,
                subject_id=subjects[subscription_id],
                data={
                    "customer_id": first["customer_id"],
                    "subscription_id": subscription_id,
                    "period_start": first["period_start"],
                    "period_end": first["period_end"],
                    "as_of": first["as_of"],
                    "currency": first["currency"],
                    "amount_minor": sum(meter["amount_minor"] for meter in meters),
                    "projected_amount_minor": sum(meter["projected_amount_minor"] for meter in meters),
                    "meters": [_usage_payload(meter) for meter in meters],
                },
            )
    return len(by_subscription)


def announce_rejected_events(*, since: datetime, until: datetime) -> int:
    """`billing.events.rejected` for events ingested in (since, until] and quarantined; returns their count."""
    with connect() as connection:
        rejected = connection.cursor(row_factory=dict_row).execute(
            REJECTED_IN_WINDOW, {"since": since, "until": until}
        ).fetchall()
        if rejected:
            enqueue_event(
                connection,
                event_type=EVENTS_REJECTED,
                subject_id=f"{since.isoformat()}/{until.isoformat()}",
                data={"ingested_after": since, "ingested_until": until, "total": len(rejected),
                      "reasons": _by_reason(rejected)},
            )
    return len(rejected)


def _announce_each(event_type: str, sql: str, *, subject: Callable[[dict], list[str]],
                   data: Callable[[dict], dict]) -> int:
    """One event of `event_type` per row of `sql`, its subject the parts `subject` names; returns the rows."""
    with connect() as connection:
        rows = connection.cursor(row_factory=dict_row).execute(sql).fetchall()
        for row in rows:
            enqueue_event(connection, event_type=event_type, subject_id="/".join(subject(row)), data=data(row))
    return len(rows)


def _by_reason(rejected: list[dict]) -> dict[str, dict]:
    reasons: dict[str, dict] = {}
    for event in rejected:
        reason = reasons.setdefault(event.pop("reject_reason"), {"count": 0, "examples": []})
        reason["count"] += 1
        if len(reason["examples"]) < EXAMPLES_PER_REASON:
            reason["examples"].append(event)
    return reasons


def _usage_payload(usage: dict) -> dict:
    return {
        key: usage[key]
        for key in ("customer_id", "subscription_id", "event_name", "period_start", "period_end", "quantity",
                    "included_units", "included_units_left", "amount_minor", "projected_amount_minor", "currency")
    }
