{#
    A view, like int_usage_events__attributed: the synced usage is always the
    current events' and nothing needs maintaining. Not incremental: each read
    aggregates the synced subscriptions' events again, found period by period
    through the index on int_usage_events__validated (subscription_id,
    occurred_at), so its cost follows the synced usage, not every event
    (README, "Usage sync to Stripe").
#}
{{ config(materialized='view') }}

with

-- NOTE: "not materialized": read subscription by subscription, by index;
-- materialized, it would be every event ever.
validated as not materialized (

    select * from {{ ref('int_usage_events__validated') }}

),

periods as (

    select * from {{ ref('int_subscription_periods') }}

),

plans as (

    select * from {{ ref('stg_app__plans') }}

    where invoiced_by = 'stripe'

),

meters as (

    select * from {{ ref('stg_app__meters') }}

    where
        stripe_meter_event_name is not null
        and aggregation in ('sum', 'count')

),

customers as (

    select * from {{ ref('stg_app__customers') }}

),

-- NOTE: "materialized": the few synced periods first, each then reads its
-- events by index; inlined, PostgreSQL may read every subscription's events
-- and drop the unsynced ones after (it did, under a filter on hour_end).
synced_periods as materialized (

    select periods.*

    from periods

    inner join plans
        on periods.plan_id = plans.plan_id

),

-- SPEC §2/§3 attribution (as int_usage_events__attributed: a valid event
-- belongs to its subscription's period containing occurred_at), one synced
-- period at a time. NOTE: "offset 0" keeps PostgreSQL from flattening the
-- subquery into a join with every valid event.
attributed as (

    select
        synced_periods.period_start,
        synced_periods.period_end,
        period_events.*

    from synced_periods

    cross join lateral (
        select
            validated.subscription_id,
            validated.customer_id,
            validated.event_name,
            validated.aggregation,
            validated.action,
            validated.value,
            validated.occurred_at

        from validated

        where
            validated.subscription_id = synced_periods.subscription_id
            and validated.occurred_at >= synced_periods.period_start
            and validated.occurred_at < synced_periods.period_end
            and validated.reject_reason is null

        offset 0  -- noqa: AM09
    ) as period_events

),

-- SPEC §16: each synced event in its UTC hour. An hour a period boundary
-- cuts (a customer time zone off the hour, such as +05:30) is two slices,
-- one per period, so each period's usage stays in the period Stripe bills.
synced_events as (

    select
        attributed.subscription_id,
        attributed.customer_id,
        attributed.event_name,
        meters.stripe_meter_event_name,
        attributed.aggregation,
        attributed.action,
        attributed.value,
        attributed.period_start,
        attributed.period_end,
        greatest(
            date_trunc('hour', attributed.occurred_at, 'UTC'),
            attributed.period_start
        ) as hour_start

    from attributed

    inner join meters
        on attributed.event_name = meters.event_name

),

hourly as (

    select
        subscription_id,
        event_name,
        hour_start,
        period_start,
        period_end,
        min(customer_id) as customer_id,
        min(stripe_meter_event_name) as stripe_meter_event_name,
        min(aggregation) as aggregation,
        count(*) as count_events,

        case min(aggregation)
            when 'count' then count(*)
            else coalesce(sum(value), 0)
        end as quantity,

        -- a `set` replaces the period's running total: no hourly sum
        -- expresses it
        coalesce(bool_or(action = 'set'), false) as has_set_action

    from synced_events

    group by 1, 2, 3, 4, 5

),

final as (

    select
        hourly.subscription_id,
        hourly.customer_id,
        customers.stripe_customer_id,
        hourly.event_name,
        hourly.stripe_meter_event_name,
        hourly.aggregation,
        hourly.hour_start,
        least(
            date_trunc('hour', hourly.hour_start, 'UTC') + interval '1 hour',
            hourly.period_end
        ) as hour_end,
        hourly.period_start,
        hourly.period_end,
        hourly.count_events,
        hourly.quantity,
        hourly.has_set_action

    from hourly

    inner join customers
        on hourly.customer_id = customers.customer_id

)

select * from final
