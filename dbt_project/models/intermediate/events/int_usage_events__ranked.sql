{#
    The dedupe ledger: every raw row ever processed, with its rank within its
    reference. Incremental (docs/incremental.md): a run reads only the raw
    rows ingested since the ledger's latest ingested_at, less the
    `ingest_lookback`, that the ledger does not hold yet (by `raw_row_id`,
    which raw numbers in load order), and ranks them again
    together with every earlier row of the references they touch. The
    rewritten rows carry the run's `processed_at`, from which the models
    downstream learn what changed.
#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='raw_row_id',
        indexes=[
            {'columns': ['raw_row_id'], 'unique': true},
            {'columns': ['reference']},
            {'columns': ['customer_id']},
            {'columns': ['ingested_at']},
            {'columns': ['processed_at']},
        ],
    )
}}

{% if is_incremental() %}
    {#- The window's start, inlined so that the planner sees how few rows it
        selects (an index range scan, not a third of raw). Capped at now: a
        row with an ingested_at in the future (a loader's wrong clock) must
        not hide the rows loaded until then. -#}
    {%- set window_start = run_query(
        "select (least(coalesce(max(ingested_at), '-infinity'), now())"
        ~ " - interval '" ~ var('ingest_lookback') ~ "')::text"
        ~ " from " ~ this
    ).columns[0].values()[0] -%}
{% endif %}

with

events as (

    select * from {{ ref('stg_app__usage_events') }}

    {% if is_incremental() %}
    -- NOTE: a row written by a transaction that started before the ledger's
    -- latest row but committed after it carries an earlier ingested_at: the
    -- lookback takes it in, the anti-join below drops what was processed.
    where ingested_at >= '{{ window_start }}'::timestamptz
    {% endif %}

),

{% if is_incremental() %}

-- NOTE: "not materialized": an import CTE read more than once is otherwise
-- materialized whole, the history, instead of being read by index where
-- each reader needs it.
ledger as not materialized (

    select * from {{ this }}

),

new_events as (

    select events.*

    from events

    where not exists (
        select 1
        from ledger
        where ledger.ingested_at >= '{{ window_start }}'::timestamptz
            and ledger.raw_row_id = events.raw_row_id
    )

),

-- Every earlier row of a reference the new rows touch: the new rows may
-- lose to them, or beat the earlier winner (a copy ingested first but
-- loaded late), so the reference is ranked again as a whole.
events_to_rank as (

    select {{ usage_event_columns() }}, raw_row_id

    from ledger

    where ledger.reference in (
        select new_events.reference from new_events
    )

    union all

    select {{ usage_event_columns() }}, raw_row_id

    from new_events

),

{% else %}

    events_to_rank as (

        select * from events

    ),

{% endif %}

-- SPEC §2: of all rows sharing a reference the first ingested wins
-- (ingested_at, then occurred_at, then raw_row_id: load order). Rows without a
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
                order by ingested_at, occurred_at nulls last, raw_row_id
            )
        end as reference_rank

    from events_to_rank

),

with_winner as (

    select
        *,

        case
            when reference is null then payload
            else first_value(payload) over by_reference
        end as winner_payload,

        case
            when reference is null then ingested_at
            else first_value(ingested_at) over by_reference
        end as winner_ingested_at

    from ranked

    window by_reference as (partition by reference order by reference_rank)

),

final as (

    select
        *,

        {% if is_incremental() %}
        -- strictly after every earlier batch, even if the clock stepped back
        greatest(
            now(),
            (select max(processed_at) from ledger) + interval '1 microsecond'
        )
        {% else %}
            now()
        {% endif %}
            as processed_at

    from with_winner

)

select * from final
