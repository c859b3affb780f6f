with

usage as (

    select * from {{ ref('int_meter_usage__aggregated') }}

),

periods as (

    select * from {{ ref('int_subscription_periods') }}

),

final as (

    select
        periods.customer_id,
        usage.subscription_id,
        periods.plan_id,
        usage.event_name,
        usage.aggregation,
        periods.period_start,
        periods.period_end,
        periods.is_closed,
        usage.quantity,
        usage.count_events

    from usage

    inner join periods
        on
            usage.subscription_id = periods.subscription_id
            and usage.period_start = periods.period_start

)

select * from final
