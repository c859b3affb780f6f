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
        {{ usage_event_columns() }},
        reject_reason

    from validated

    where reject_reason is not null

)

select * from rejected
