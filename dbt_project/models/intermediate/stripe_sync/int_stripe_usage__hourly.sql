{#
    A view, like int_usage_events__attributed: the synced usage is always the
    current events' and nothing needs maintaining. NOTE: not incremental: each
    read scans the valid events for the synced ones and aggregates them again
    (billing.stripe_sync reads it two or three times a run): 0.75 s over 1M
    events, growing with the history (README, "Usage sync to Stripe").
#}
{{ config(materialized='view') }}

with

attributed as (

    select * from {{ ref('int_usage_events__attributed') }}

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

-- SPEC §16: the deduped, validated, attributed events of synced plans and
-- meters, each in its UTC hour. An hour a period boundary cuts (a customer
-- time zone off the hour, such as +05:30) is two slices, one per period, so
-- each period's usage stays in the period Stripe bills.
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

    inner join plans
        on attributed.plan_id = plans.plan_id

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
