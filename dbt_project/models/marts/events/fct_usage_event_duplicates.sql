{#
    A view over a maintained table (docs/incremental.md): rebuilding it as a
    table would rescan every event each run.
#}
{{ config(materialized='view') }}

with

ranked as (

    select * from {{ ref('int_usage_events__ranked') }}

),

-- SPEC §2: every row that lost to an earlier row with the same reference is
-- dropped from billing and counted here; one whose payload differs from the
-- winner's is a conflicting duplicate, listed for review.
duplicates as (

    select
        {{ usage_event_columns() }},
        winner_ingested_at,
        winner_payload,
        (payload is distinct from winner_payload) as is_conflicting

    from ranked

    where reference_rank > 1

)

select * from duplicates
