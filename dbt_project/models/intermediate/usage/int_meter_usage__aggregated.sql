{#
    A view: both halves are maintained tables (docs/incremental.md), and
    joining them costs one pass over the usage rows, not over the events.
#}
{{ config(materialized='view') }}

with

period_local as (

    select * from {{ ref('int_meter_usage__period_local') }}

),

stateful as (

    select * from {{ ref('int_meter_usage__stateful') }}

),

-- Stateful aggregations have a quantity in every period of the customer,
-- with or without events in it; the others only where there were events.
final as (

    select
        coalesce(stateful.subscription_id, period_local.subscription_id)
            as subscription_id,
        coalesce(stateful.event_name, period_local.event_name)
            as event_name,
        coalesce(stateful.period_start, period_local.period_start)
            as period_start,
        coalesce(stateful.aggregation, period_local.aggregation)
            as aggregation,
        coalesce(stateful.quantity, period_local.quantity) as quantity,
        coalesce(period_local.count_events, 0) as count_events,
        coalesce(period_local.total_value, 0) as total_value

    from period_local

    full outer join stateful
        on
            period_local.subscription_id = stateful.subscription_id
            and period_local.event_name = stateful.event_name
            and period_local.period_start = stateful.period_start

)

select * from final
