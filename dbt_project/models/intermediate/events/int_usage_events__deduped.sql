{{ config(materialized='view') }}

with

ranked as (

    select * from {{ ref('int_usage_events__ranked') }}

),

winners as (

    select
        reference,
        customer_id,
        event_name,
        value,
        properties,
        action,
        occurred_at,
        ingested_at,
        raw_row_position

    from ranked

    where reference_rank = 1

)

select * from winners
