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

{{ charged_usage_cte() }},

{{ rated_usage_ctes() }}

select * from rated
