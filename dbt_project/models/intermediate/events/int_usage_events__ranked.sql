{{ config(materialized='view') }}

with

events as (

    select * from {{ ref('stg_app__usage_events') }}

),

-- SPEC §2: of all rows sharing a reference the first ingested wins
-- (ingested_at, then occurred_at, then position in the load). Rows without a
-- reference are never grouped: each is its own winner, and is rejected later.
ranked as (

    select
        *,

        jsonb_build_array(
            customer_id, event_name, value, properties, action, occurred_at
        ) as payload,

        case
            when reference is null then 1
            else row_number() over (
                partition by reference
                order by ingested_at, occurred_at nulls last, raw_row_position
            )
        end as reference_rank

    from events

),

with_winner as (

    select
        *,

        first_value(payload) over by_reference as winner_payload,
        first_value(ingested_at) over by_reference as winner_ingested_at

    from ranked

    window by_reference as (partition by reference order by reference_rank)

)

select * from with_winner
