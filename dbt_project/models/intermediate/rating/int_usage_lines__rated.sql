with

periods as (

    select * from {{ ref('int_subscription_periods') }}

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

-- One line per period × plan charge, whether or not there was usage
-- (empty period: quantity 0, SPEC §4).
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
        coalesce(usage.quantity, 0) as quantity,
        coalesce(usage.count_events, 0) as count_events,
        coalesce(usage.total_value, 0) as total_value

    from periods

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
