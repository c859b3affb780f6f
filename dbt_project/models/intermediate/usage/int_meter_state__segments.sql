{#
    The state each event of a stateful meter sets, and how long it lasts.
    Incremental (docs/incremental.md): for each customer × meter in
    int_meter_state__changed, a run recomputes the segments from its
    change_from on, continuing from the segment in force at that moment (the
    anchor: its state stays, its end may move; for weighted_sum its gauge is
    the sum of every delta before). Segments that started earlier are
    untouched, so a run's cost follows the changed events, not the history.
#}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace',
        unique_key='raw_row_id',
        indexes=[
            {'columns': ['raw_row_id'], 'unique': true},
            {'columns': ['customer_id', 'event_name', 'segment_end']},
            {'columns': ['segment_end']},
        ],
    )
}}

-- depends_on: {{ ref('int_meter_state__changed') }}

with

-- NOTE: "not materialized": filtered by index below; materialized, it would
-- be every event ever.
attributed as not materialized (

    select * from {{ ref('int_usage_events__attributed') }}

),

meters as (

    select * from {{ ref('stg_app__meters') }}

),

subscriptions as (

    select * from {{ ref('stg_app__subscriptions') }}

),

{% if is_incremental() %}

changed_states as (

    select * from {{ ref('int_meter_state__changed') }}

),

-- The changed states' events from change_from on, read through their
-- subscriptions (index on subscription_id, occurred_at).
events as (

    select attributed.*

    from changed_states

    inner join subscriptions
        on changed_states.customer_id = subscriptions.customer_id
        and changed_states.change_from
            < coalesce(subscriptions.ended_at, 'infinity'::timestamptz)

    inner join attributed
        on subscriptions.subscription_id = attributed.subscription_id
        and changed_states.event_name = attributed.event_name
        and attributed.occurred_at >= changed_states.change_from

),

-- The segments the run replaces: the anchor (started before change_from,
-- still in force at it) and every later one.
replaced as (

    select existing.*

    from {{ this }} as existing

    inner join changed_states
        on existing.customer_id = changed_states.customer_id
        and existing.event_name = changed_states.event_name
        and existing.segment_end >= changed_states.change_from

),

anchors as (

    select * from replaced

    inner join changed_states
        using (customer_id, event_name)

    where replaced.segment_start < changed_states.change_from

),

{% else %}

    events as (

        select * from attributed

    ),

{% endif %}

-- SPEC §4: state that carries across periods belongs to the customer (it
-- survives a plan change), per resource for time_duration. A resource without
-- the property is one resource of its own ('').
keyed as (

    select
        events.raw_row_id,
        events.customer_id,
        events.event_name,
        events.aggregation,

        case
            when events.aggregation = 'time_duration'
                then
                    coalesce(
                        events.properties ->> meters.aggregated_property, ''
                    )
            else ''
        end as resource,

        events.reference,
        events.occurred_at,
        events.ingested_at,
        events.value,
        null::numeric as anchor_state

    from events

    inner join meters
        on events.event_name = meters.event_name

    where meters.is_stateful

    {% if is_incremental() %}
    -- An anchor starts before every recomputed event of its state, so it
    -- comes first whatever its ingested_at.
    union all

    select
        raw_row_id,
        customer_id,
        event_name,
        aggregation,
        resource,
        reference,
        segment_start as occurred_at,
        null::timestamptz as ingested_at,
        null::numeric as value,
        state_value as anchor_state

    from anchors
    {% endif %}

),

-- Each event starts a segment that lasts until the next event of the same
-- state (events ordered by occurred_at, ingested_at, reference). Its state is
-- the event's value (last_ever, time_duration on/off) or, for weighted_sum,
-- the running gauge: the sum of every delta so far (an anchor's gauge stands
-- for every delta up to it).
segments as (

    select
        raw_row_id,
        customer_id,
        event_name,
        aggregation,
        resource,
        reference,
        occurred_at as segment_start,

        coalesce(
            lead(occurred_at) over by_state, 'infinity'::timestamptz
        ) as segment_end,

        case aggregation
            when 'weighted_sum'
                then sum(coalesce(anchor_state, value)) over (
                    by_state rows between unbounded preceding and current row
                )
            else coalesce(anchor_state, value)
        end as state_value

    from keyed

    window by_state as (
        partition by customer_id, event_name, resource
        order by occurred_at, ingested_at, reference
    )

)

{% if is_incremental() %}

select *, false as _is_tombstone from segments

union all

select
    raw_row_id,
    customer_id,
    event_name,
    aggregation,
    resource,
    reference,
    segment_start,
    segment_end,
    state_value,
    true as _is_tombstone

from replaced

{% else %}

    select * from segments

{% endif %}
