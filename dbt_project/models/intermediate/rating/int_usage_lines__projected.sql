with

periods as (

    select * from {{ ref('int_subscription_periods') }}

    -- the period each subscription is in at the run's as_of
    where period_start <= {{ as_of() }}
        and {{ as_of() }} < period_end

),

charges as (

    select * from {{ ref('stg_app__plan_charges') }}

),

tiers as (

    select * from {{ ref('stg_app__plan_charge_tiers') }}

),

meters as (

    select * from {{ ref('stg_app__meters') }}

),

usage as (

    select * from {{ ref('int_meter_usage__aggregated') }}

),

-- The run-rate to period end: usage that accumulates over time (counts, sums,
-- hours on) is scaled by period length / time elapsed; levels (max, min,
-- averages, last values, distinct counts) are assumed to hold.
charged_usage as (

    select
        periods.subscription_id,
        periods.period_start,
        charges.plan_id,
        charges.event_name,
        charges.pricing_model,
        charges.unit_price,
        charges.included_units,
        charges.package_size,
        charges.percentage_rate,
        charges.fixed_fee_per_event,
        meters.display_name,

        coalesce(usage.quantity, 0) * case
            when meters.aggregation in ('count', 'sum', 'markup_percentage', 'time_duration')
                then run_rate.factor
            else 1
        end as quantity,

        coalesce(usage.count_events, 0) * run_rate.factor as count_events,
        coalesce(usage.total_value, 0) * run_rate.factor as total_value

    from periods

    cross join lateral (
        select
            {{ divide(
                'extract(epoch from periods.period_end - periods.period_start)',
                'greatest(extract(epoch from ' ~ as_of() ~ ' - periods.period_start), 3600)'
            ) }} as factor
    ) as run_rate

    inner join charges
        on periods.plan_id = charges.plan_id

    inner join meters
        on charges.event_name = meters.event_name

    left join usage
        on periods.subscription_id = usage.subscription_id
        and periods.period_start = usage.period_start
        and charges.event_name = usage.event_name

),

{{ rated_usage_ctes() }}

select * from rated
