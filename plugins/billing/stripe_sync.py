"""Usage sync to Stripe Meters for the plans Stripe invoices (SPEC §16).

Each run sends every hour that is over (its end at or before the run's as_of) of
`int_stripe_usage__hourly` that Stripe does not hold yet, as one meter event: identifier
`{subscription_id}:{event_name}:{hour start, UTC}` (`:v2`, `:v3`… when re-sent), timestamp the
hour's start, payload `stripe_customer_id` + `value`. What Stripe documents, and this follows:

- an identifier is unique "within a rolling period of at least 24 hours"; a second event with it is
  refused ("An event already exists with identifier …"), which here means it was sent before;
- the value "only accepts whole number values"; negative quantities correct earlier usage
  ("fix incorrectly recorded usage data by recording negative quantities");
- a meter event adjustment (`cancel.identifier`) cancels an event "within 24 hours of Stripe
  receiving" it; the timestamp must be "within the past 35 calendar days";
- a finalised invoice is never updated for later usage.

Every call is recorded in billing.stripe_usage_sends before it is made and resolved after, like
charges (billing.payments.charging): a crash in between re-sends the same identifier. An hour whose
usage changed (late events) is re-sent as cancels of its live events plus a new version while
Stripe can still cancel them, else as a correcting event for the difference. What cannot be
expressed (a fraction, a `set` event, an hour older than 35 days, a period Stripe has invoiced, an
event Stripe refused) is listed in billing.stripe_usage_unsynced with the reason.

`reconcile_usage` compares, for the periods that ended and that Stripe finalises within the grace,
Stripe's event summaries with the warehouse's period usage, and announces a difference with
`billing.usage_sync.mismatch`; the `stripe_sync` gate (billing.quality.billing_gates) fails on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import stripe
from psycopg.rows import dict_row

from billing.idempotency import idempotency_key
from billing.transform import ref
from billing.warehouse import connect
from billing.webhooks.outbox import enqueue_event
from billing.window import duration

USAGE_SYNC_MISMATCH = "billing.usage_sync.mismatch"
# Stripe cancels an event within 24 h of receiving it, on its clock; cancel only while an hour of
# margin remains, so clock skew and a slow run never meet a refused cancel on the common path.
CANCEL_WINDOW = timedelta(hours=23)
TIMESTAMP_WINDOW = timedelta(days=35)
IDENTIFIER_MAX_LENGTH = 100

# Every hour that is over, synced or not, with what Stripe holds for it so far (pending calls
# count: they are re-sent with their identifier until resolved). The hours no event holds any more
# (their events moved or were rejected) come from the sends alone, with a quantity of 0; only once
# over as well, so that a backfill's earlier as_of never takes back an hour a later run sent.
HOURS = """
with sends as (
    select subscription_id, event_name, hour_start,
        min(stripe_customer_id) as sent_customer_id, min(stripe_event_name) as sent_event_name,
        coalesce(sum(value) filter (where status != 'refused'), 0) as stripe_quantity,
        max(version) as last_version,
        bool_or(status = 'refused' and kind != 'cancel') as has_refused_event,
        string_agg(error, '; ') filter (where status = 'refused' and kind != 'cancel') as refusal
    from billing.stripe_usage_sends
    group by 1, 2, 3
)
select
    coalesce(hourly.subscription_id, sends.subscription_id) as subscription_id,
    coalesce(hourly.event_name, sends.event_name) as event_name,
    coalesce(hourly.hour_start, sends.hour_start) as hour_start,
    coalesce(hourly.stripe_customer_id, sends.sent_customer_id) as stripe_customer_id,
    coalesce(hourly.stripe_meter_event_name, sends.sent_event_name) as stripe_event_name,
    coalesce(hourly.quantity, 0) as warehouse_quantity,
    coalesce(sends.stripe_quantity, 0) as stripe_quantity,
    coalesce(sends.last_version, 0) as last_version,
    coalesce(hourly.has_set_action, false) as has_set_action,
    coalesce(sends.has_refused_event, false) as has_refused_event,
    sends.refusal,
    periods.period_end
from (select * from {hourly} where hour_end <= %(as_of)s) as hourly
full join sends
    on hourly.subscription_id = sends.subscription_id
    and hourly.event_name = sends.event_name
    and hourly.hour_start = sends.hour_start
left join {periods} as periods
    on periods.subscription_id = coalesce(hourly.subscription_id, sends.subscription_id)
    and coalesce(hourly.hour_start, sends.hour_start) >= periods.period_start
    and coalesce(hourly.hour_start, sends.hour_start) < periods.period_end
where hourly.subscription_id is not null or sends.hour_start + interval '1 hour' <= %(as_of)s
order by 1, 2, 3
"""

# An hour's events that Stripe holds and no cancel has taken back.
LIVE_EVENTS = """
select events.identifier, events.value, events.status, events.resolved_at,
    exists (
        select 1 from billing.stripe_usage_sends as refused
        where refused.cancels = events.identifier and refused.status = 'refused'
    ) as cancel_refused
from billing.stripe_usage_sends as events
where events.subscription_id = %(subscription_id)s and events.event_name = %(event_name)s
    and events.hour_start = %(hour_start)s and events.kind != 'cancel' and events.status != 'refused'
    and not exists (
        select 1 from billing.stripe_usage_sends as cancels
        where cancels.cancels = events.identifier and cancels.status != 'refused'
    )
order by events.version
"""

RECORD_SEND = """
insert into billing.stripe_usage_sends (
    identifier, subscription_id, event_name, hour_start, version, kind, cancels, stripe_customer_id,
    stripe_event_name, value, status, sent_for
)
values (
    %(identifier)s, %(subscription_id)s, %(event_name)s, %(hour_start)s, %(version)s, %(kind)s, %(cancels)s,
    %(stripe_customer_id)s, %(stripe_event_name)s, %(value)s, 'pending', %(as_of)s
)
on conflict do nothing
"""

RESOLVE_SEND = """
update billing.stripe_usage_sends
set status = %(status)s, error = %(error)s, resolved_at = now()
where identifier = %(identifier)s and status = 'pending'
"""

PENDING_SENDS = """
select sends.*, cancelled.identifier as cancelled_identifier
from billing.stripe_usage_sends as sends
left join billing.stripe_usage_sends as cancelled on sends.cancels = cancelled.identifier
where sends.status = 'pending'
order by sends.subscription_id, sends.event_name, sends.hour_start, sends.version
"""

# The synced periods Stripe finalises within the grace after this run: ended, not yet past the
# grace. Each meter the plan charges that is synced, with the warehouse's usage of the period.
PERIODS_TO_RECONCILE = """
select periods.subscription_id, periods.customer_id, periods.period_start, periods.period_end,
    customers.stripe_customer_id, meters.event_name, meters.stripe_meter_event_name,
    coalesce(usage.quantity, 0) as warehouse_quantity
from {periods} as periods
inner join raw.plans on periods.plan_id = plans.plan_id
inner join raw.plan_charges on plans.plan_id = plan_charges.plan_id
inner join raw.meters on plan_charges.event_name = meters.event_name
inner join raw.customers on periods.customer_id = customers.customer_id
left join {usage} as usage
    on usage.subscription_id = periods.subscription_id
    and usage.event_name = meters.event_name
    and usage.period_start = periods.period_start
where plans.invoiced_by = 'stripe'
    and meters.stripe_meter_event_name is not null
    and meters.aggregation in ('sum', 'count')
    and periods.period_end <= %(as_of)s
    and %(as_of)s < periods.period_end + %(grace)s::interval
order by 1, 6
"""

RECORD_RECONCILIATION = """
insert into billing.stripe_usage_reconciliations (
    subscription_id, event_name, period_start, period_end, customer_id, stripe_customer_id, stripe_meter_id,
    warehouse_quantity, stripe_quantity, checked_for
)
values (
    %(subscription_id)s, %(event_name)s, %(period_start)s, %(period_end)s, %(customer_id)s,
    %(stripe_customer_id)s, %(stripe_meter_id)s, %(warehouse_quantity)s, %(stripe_quantity)s, %(as_of)s
)
on conflict (subscription_id, event_name, period_start, checked_for) do update
set stripe_quantity = excluded.stripe_quantity, warehouse_quantity = excluded.warehouse_quantity,
    stripe_meter_id = excluded.stripe_meter_id, checked_at = now()
"""


class SendsUnresolved(RuntimeError):
    """Stripe did not answer a call; it stays pending and is re-sent, same identifier, by the next run."""


@dataclass(frozen=True)
class SyncSummary:
    sent: int = 0  # meter events Stripe accepted, usage and corrections
    cancelled: int = 0  # events taken back by an accepted cancel
    refused: int = 0  # calls Stripe refused (a refused cancel becomes a correction)
    unsynced: int = 0  # hours listed in billing.stripe_usage_unsynced


def configured_client() -> stripe.StripeClient:
    """The Stripe account of the payment gateway's settings (BILLING_STRIPE_*), one home."""
    from billing.payments.stripe_gateway import stripe_client, stripe_settings

    settings = stripe_settings()
    return stripe_client(settings.pop("api_key"), **settings)


def sync_usage(client: stripe.StripeClient, *, as_of: datetime, grace: str) -> SyncSummary:
    """Record what each hour that is over needs sent, send it, and list what cannot be sent.

    A cancel Stripe refuses (its 24 h had passed after all) drops the new version recorded with it,
    never sent, and the second pass sends a correcting event instead. Raises SendsUnresolved when
    Stripe leaves a call unanswered: it and the calls after it stay pending for the next run.
    Stripe's own windows (24 h to cancel, 35 days of timestamps) are judged on the wall clock.
    """
    now = datetime.now(UTC)
    totals = {"sent": 0, "cancelled": 0, "refused": 0}
    for _ in range(2):
        _record_due_sends(as_of=as_of, grace=grace, now=now)
        outcome = _resolve_pending(client)
        for key in totals:
            totals[key] += outcome[key]
        if outcome["unresolved"]:
            raise SendsUnresolved("Stripe did not answer, re-sent by the next run: " + outcome["unresolved"])
        if not outcome["cancels_refused"]:
            break
    unsynced = _list_unsynced(as_of=as_of, grace=grace, now=now)
    return SyncSummary(**totals, unsynced=unsynced)


def hour_identifier(subscription_id: str, event_name: str, hour_start: datetime, version: int = 1) -> str:
    """SPEC §16's identifier of an hour's meter event; version 2 on is suffixed `:v<n>`."""
    base = f"{subscription_id}:{event_name}:{hour_start.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"
    return base if version == 1 else f"{base}:v{version}"


def _hours(connection, *, as_of: datetime) -> list[dict]:
    query = HOURS.format(hourly=ref("int_stripe_usage__hourly"), periods=ref("int_subscription_periods"))
    return connection.cursor(row_factory=dict_row).execute(query, {"as_of": as_of}).fetchall()


def _unsyncable(hour: dict, *, as_of: datetime, grace: str, now: datetime) -> str | None:
    """Why the hour's difference cannot be sent, or None."""
    difference = hour["warehouse_quantity"] - hour["stripe_quantity"]
    if hour["has_refused_event"]:
        return f"refused_by_stripe: {hour['refusal']}"
    if hour["has_set_action"]:
        return "set_action: a set replaces the period's total, which no hourly event expresses"
    if difference != difference.to_integral_value():
        return "not_whole_number: Stripe meter events take whole numbers only"
    if not hour["stripe_customer_id"]:
        return "no_stripe_customer_id"
    longest = hour_identifier(hour["subscription_id"], hour["event_name"], hour["hour_start"], version=99)
    if len(longest) > IDENTIFIER_MAX_LENGTH:
        return "identifier_too_long: Stripe takes identifiers of up to 100 characters"
    if hour["hour_start"] < now - TIMESTAMP_WINDOW:
        return "older_than_35_days: Stripe takes event timestamps within the past 35 days"
    if hour["period_end"] is not None and as_of >= hour["period_end"] + duration(grace):
        return "period_finalized: Stripe has invoiced the period"
    return None


def _record_due_sends(*, as_of: datetime, grace: str, now: datetime) -> None:
    """Record, pending, every call the hours need; one transaction, before any call is made."""
    with connect() as connection:
        for hour in _hours(connection, as_of=as_of):
            if hour["warehouse_quantity"] == hour["stripe_quantity"]:
                continue
            if _unsyncable(hour, as_of=as_of, grace=grace, now=now):
                continue
            for send in _sends_for(connection, hour, now=now):
                connection.execute(RECORD_SEND, {**send, "as_of": as_of})


def _sends_for(connection, hour: dict, *, now: datetime) -> list[dict]:
    """A first event; or cancels of the live events and a new version; or a correction."""
    keys = {name: hour[name] for name in ("subscription_id", "event_name", "hour_start")}
    common = {**keys, "stripe_customer_id": hour["stripe_customer_id"], "stripe_event_name": hour["stripe_event_name"]}
    live = connection.cursor(row_factory=dict_row).execute(LIVE_EVENTS, keys).fetchall()
    version = hour["last_version"]
    cancellable = live and all(
        not event["cancel_refused"]
        and (event["status"] == "pending" or event["resolved_at"] > now - CANCEL_WINDOW)
        for event in live
    )
    sends = []
    if live and not cancellable:
        version += 1
        return [{**common, "identifier": hour_identifier(*keys.values(), version), "version": version,
                 "kind": "correction", "cancels": None,
                 "value": hour["warehouse_quantity"] - hour["stripe_quantity"]}]
    for event in live:
        version += 1
        sends.append({**common, "identifier": f"cancel:{event['identifier']}", "version": version, "kind": "cancel",
                      "cancels": event["identifier"], "value": -event["value"]})
    if hour["warehouse_quantity"]:
        version += 1
        sends.append({**common, "identifier": hour_identifier(*keys.values(), version), "version": version,
                      "kind": "usage", "cancels": None, "value": hour["warehouse_quantity"]})
    return sends


def _resolve_pending(client: stripe.StripeClient) -> dict:
    """Make each pending call, hour by hour in version order, and record its outcome.

    Stops at the first call Stripe leaves unanswered (an outage: the rest waits for the next run).
    """
    outcome = {"sent": 0, "cancelled": 0, "refused": 0, "cancels_refused": 0, "unresolved": ""}
    # NOTE: one connection for the whole batch, each outcome committed as soon as it is known
    with connect(autocommit=True) as connection:
        pending = connection.cursor(row_factory=dict_row).execute(PENDING_SENDS).fetchall()
        dropped_hours = set()
        for send in pending:
            hour = (send["subscription_id"], send["event_name"], send["hour_start"])
            if hour in dropped_hours:
                continue
            try:
                refusal = _call(client, send)
            except (stripe.AuthenticationError, stripe.PermissionError):
                raise
            except stripe.StripeError as error:
                outcome["unresolved"] = f"{send['identifier']}: {type(error).__name__}: {' '.join(str(error).split())}"
                return outcome
            with connection.transaction():
                connection.execute(RESOLVE_SEND, {
                    "identifier": send["identifier"], "status": "refused" if refusal else "sent", "error": refusal,
                })
                if refusal and send["kind"] == "cancel":
                    # NOTE: the hour's later calls were recorded with this cancel and never made (calls
                    # go in version order); the next pass records a correction in their place.
                    connection.execute(
                        "delete from billing.stripe_usage_sends where subscription_id = %s and event_name = %s"
                        " and hour_start = %s and version > %s and status = 'pending'",
                        (*hour, send["version"]),
                    )
                    dropped_hours.add(hour)
            if refusal:
                outcome["refused"] += 1
                outcome["cancels_refused"] += send["kind"] == "cancel"
            else:
                outcome["cancelled" if send["kind"] == "cancel" else "sent"] += 1
    return outcome


def _call(client: stripe.StripeClient, send: dict) -> str | None:
    """Make one recorded call; the reason Stripe refused it, or None when Stripe holds it."""
    try:
        if send["kind"] == "cancel":
            client.v1.billing.meter_event_adjustments.create(
                {"event_name": send["stripe_event_name"], "type": "cancel",
                 "cancel": {"identifier": send["cancelled_identifier"]}},
                {"idempotency_key": idempotency_key("mea", send["identifier"])},
            )
        else:
            client.v1.billing.meter_events.create({
                "event_name": send["stripe_event_name"],
                "identifier": send["identifier"],
                "timestamp": int(send["hour_start"].timestamp()),
                "payload": {"stripe_customer_id": send["stripe_customer_id"], "value": str(int(send["value"]))},
            })
    except stripe.InvalidRequestError as error:
        message = (error.json_body or {}).get("error", {}).get("message") or str(error)
        if send["kind"] != "cancel" and "already exists" in message:
            return None  # NOTE: sent before a crash lost the answer: Stripe holds this identifier's event
        return " ".join(message.split())
    return None


def _list_unsynced(*, as_of: datetime, grace: str, now: datetime) -> int:
    """Replace the list of hours out of sync with the reason each cannot be sent."""
    with connect() as connection:
        rows = []
        for hour in _hours(connection, as_of=as_of):
            if hour["warehouse_quantity"] == hour["stripe_quantity"]:
                continue
            reason = _unsyncable(hour, as_of=as_of, grace=grace, now=now) or "pending: not answered yet"
            rows.append((hour["subscription_id"], hour["event_name"], hour["hour_start"], hour["warehouse_quantity"],
                         hour["stripe_quantity"], reason, as_of))
        connection.execute("delete from billing.stripe_usage_unsynced")
        connection.cursor().executemany(
            "insert into billing.stripe_usage_unsynced (subscription_id, event_name, hour_start, warehouse_quantity,"
            " stripe_quantity, reason, listed_for) values (%s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
    return len(rows)


def reconcile_usage(client: stripe.StripeClient, *, as_of: datetime, grace: str) -> int:
    """Record Stripe's and the warehouse's usage of each synced period Stripe is about to finalise;
    announce each difference once. Returns how many periods × meters differ."""
    with connect() as connection:
        periods = connection.cursor(row_factory=dict_row).execute(
            PERIODS_TO_RECONCILE.format(periods=ref("int_subscription_periods"), usage=ref("fct_meter_usage")),
            {"as_of": as_of, "grace": grace},
        ).fetchall()
    if not periods:
        return 0
    meters = client.v1.billing.meters.list({"limit": 100}).auto_paging_iter()
    meter_ids = {meter.event_name: meter.id for meter in meters}
    checked = []
    for period in periods:
        meter_id = meter_ids.get(period["stripe_meter_event_name"])
        stripe_quantity = Decimal(0)
        if meter_id and period["stripe_customer_id"]:
            summaries = client.v1.billing.meters.event_summaries.list(meter_id, {
                "customer": period["stripe_customer_id"],
                "start_time": int(period["period_start"].timestamp()),
                "end_time": int(period["period_end"].timestamp()),
            })
            stripe_quantity = sum((Decimal(str(summary.aggregated_value)) for summary in summaries.auto_paging_iter()),
                                  Decimal(0))
        checked.append({**period, "stripe_meter_id": meter_id or "(no such Stripe meter)",
                        "stripe_customer_id": period["stripe_customer_id"] or "", "stripe_quantity": stripe_quantity})
    mismatches = 0
    with connect() as connection:
        for period in checked:
            connection.execute(RECORD_RECONCILIATION, {**period, "as_of": as_of})
            if period["stripe_quantity"] != period["warehouse_quantity"]:
                mismatches += 1
                enqueue_event(
                    connection, event_type=USAGE_SYNC_MISMATCH,
                    subject_id=f"{period['subscription_id']}/{period['event_name']}/{period['period_start'].isoformat()}",
                    data={name: period[name] for name in (
                        "customer_id", "subscription_id", "event_name", "stripe_customer_id",
                        "stripe_meter_event_name", "period_start", "period_end", "warehouse_quantity",
                        "stripe_quantity")},
                )
    return mismatches


def sync_status() -> tuple[list[dict], list[dict]]:
    """Per subscription: meter events sent, calls pending, hours corrected and unsynced (the analysts'
    mart fct_stripe_usage_sync, summed over meters); and each unsynced hour with its reason."""
    with connect() as connection:
        cursor = connection.cursor(row_factory=dict_row)
        subscriptions = cursor.execute(f"""
            select subscription_id, sum(count_sent_events) as sent, sum(count_pending_calls) as pending,
                sum(count_corrected_hours) as corrected, sum(count_unsynced_hours) as unsynced,
                max(last_sent_at) as last_sent_at
            from {ref('fct_stripe_usage_sync')}
            group by 1
            order by 1
        """).fetchall()
        hours = cursor.execute(
            "select * from billing.stripe_usage_unsynced order by subscription_id, event_name, hour_start"
        ).fetchall()
    return subscriptions, hours
