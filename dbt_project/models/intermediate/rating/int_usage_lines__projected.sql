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

{{ charged_usage_cte(run_rate=true) }},

{{ rated_usage_ctes() }}

select * from rated
