with

events as (

    select * from {{ ref('int_usage_events__attributed') }}

    where aggregation in ('last_ever', 'time_duration', 'weighted_sum')

),

meters as (

    select * from {{ ref('stg_app__meters') }}

),

-- SPEC §4: state that carries across periods belongs to the customer (it
-- survives a plan change), per resource for time_duration. A resource without
-- the property is one resource of its own ('').
keyed as (

    select
        events.customer_id,
        events.event_name,
        events.aggregation,

        case
            when events.aggregation = 'time_duration'
                then coalesce(events.properties ->> meters.aggregated_property, '')
            else ''
        end as resource,

        events.value,
        events.occurred_at,
        events.ingested_at,
        events.reference

    from events

    inner join meters
        on events.event_name = meters.event_name

),

-- Each event starts a segment that lasts until the next event of the same
-- state (events ordered by occurred_at, ingested_at, reference). Its state is
-- the event's value (last_ever, time_duration on/off) or, for weighted_sum,
-- the running gauge: the sum of every delta so far.
segments as (

    select
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
            when 'weighted_sum' then sum(value) over (
                by_state rows between unbounded preceding and current row
            )
            else value
        end as state_value

    from keyed

    window by_state as (
        partition by customer_id, event_name, resource
        order by occurred_at, ingested_at, reference
    )

)

select * from segments
