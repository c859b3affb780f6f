{#
    A view over a maintained table (docs/incremental.md): rebuilding it as a
    table would rescan every event each run.
#}
{{ config(materialized='view') }}

with

validated as (

    select * from {{ ref('int_usage_events__validated') }}

),

rejected as (

    select
        reference,
        customer_id,
        event_name,
        value,
        properties,
        action,
        occurred_at,
        ingested_at,
        reject_reason

    from validated

    where reject_reason is not null

)

select * from rejected
