{#
    The usage each rating model rates, one row per line basis × subscription
    × billing period × plan charge (an empty period has quantity 0, SPEC §4).
    Ephemeral: each caller inlines it and keeps one basis (line_basis = …),
    so PostgreSQL plans that basis's periods only.
#}
{{ config(materialized='ephemeral') }}

with

-- NOTE: "not materialized", like current_periods below: each basis reads
-- the periods on its own, so a caller that keeps one basis scans them once.
periods as not materialized (

    select * from {{ ref('int_subscription_periods') }}

),

charges as (

    select * from {{ ref('stg_app__plan_charges') }}

),

meters as (

    select * from {{ ref('stg_app__meters') }}

),

usage as (

    select * from {{ ref('int_meter_usage__aggregated') }}

),

current_periods as not materialized (

    select * from periods

    -- the period each subscription is in at the run's as_of
    where
        period_start <= {{ as_of() }}
        and {{ as_of() }} < period_end

),

-- The bases: 'period', every period's usage (int_usage_lines__rated);
-- 'current', the usage so far of the current periods
-- (int_usage_lines__current); 'projected', the same run on to the period's
-- end (int_usage_lines__projected): usage that accumulates over time is
-- scaled by period length / time elapsed (at least an hour).
based_periods as (

    select
        'period' as line_basis,
        subscription_id,
        plan_id,
        period_start,
        1::numeric as run_rate_factor

    from periods

    union all

    select
        'current' as line_basis,
        subscription_id,
        plan_id,
        period_start,
        1::numeric as run_rate_factor

    from current_periods

    union all

    select
        'projected' as line_basis,
        subscription_id,
        plan_id,
        period_start,
        {{ divide(
            'extract(epoch from period_end - period_start)',
            'greatest(extract(epoch from ' ~ as_of() ~ ' - period_start), 3600)'
        ) }} as run_rate_factor

    from current_periods

),

-- Levels (max, min, averages, last values, distinct counts) are not scaled:
-- they are assumed to hold to the period's end.
charged_usage as (

    select
        based_periods.line_basis,
        based_periods.subscription_id,
        based_periods.period_start,
        charges.plan_id,
        charges.event_name,
        charges.pricing_model,
        charges.unit_price,
        charges.included_units,
        charges.package_size,
        charges.percentage_rate,
        charges.fixed_fee_per_event,
        charges.usage_limit,
        charges.limit_behavior,
        meters.display_name,

        coalesce(usage.quantity, 0) * case
            when
                meters.aggregation in (
                    'count', 'sum', 'markup_percentage', 'time_duration'
                )
                then based_periods.run_rate_factor
            else 1
        end as quantity,

        coalesce(usage.count_events, 0) * based_periods.run_rate_factor
            as count_events,
        coalesce(usage.total_value, 0) * based_periods.run_rate_factor
            as total_value

    from based_periods

    inner join charges
        on based_periods.plan_id = charges.plan_id

    inner join meters
        on charges.event_name = meters.event_name

    left join usage
        on
            based_periods.subscription_id = usage.subscription_id
            and based_periods.period_start = usage.period_start
            and charges.event_name = usage.event_name

)

select * from charged_usage
