with

events as (

    select * from {{ ref('int_usage_events__attributed') }}

),

meters as (

    select * from {{ ref('stg_app__meters') }}

),

stateful as (

    select * from {{ ref('int_meter_usage__stateful') }}

),

-- SPEC §4 ordering of events: occurred_at, then ingested_at, then reference.
-- `sets_at_or_after` counts the `set` actions from an event to the period's
-- end: a set replaces the running total, so only the last set of the period
-- and the increments after it count towards a sum.
ordered as (

    select
        events.*,
        meters.aggregated_property,

        count(*) filter (where events.action = 'set') over (
            partition by events.subscription_id, events.event_name, events.period_start
            order by events.occurred_at desc, events.ingested_at desc, events.reference desc
            rows between unbounded preceding and current row
        ) as sets_at_or_after,

        row_number() over (
            partition by events.subscription_id, events.event_name, events.period_start
            order by events.occurred_at desc, events.ingested_at desc, events.reference desc
        ) = 1 as is_last_in_period

    from events

    inner join meters
        on events.event_name = meters.event_name

),

period_aggregates as (

    select
        subscription_id,
        event_name,
        period_start,
        min(aggregation) as aggregation,
        count(*) as count_events,
        sum(value) as total_value,

        case min(aggregation)
            when 'count' then count(*)
            when 'sum' then coalesce(
                sum(value) filter (
                    where sets_at_or_after = 0
                        or (action = 'set' and sets_at_or_after = 1)
                ),
                0
            )
            when 'count_unique' then
                count(distinct properties ->> aggregated_property)
            when 'max' then max(value)
            when 'min' then min(value)
            when 'average' then {{ divide('sum(value)', 'count(value)') }}
            when 'last_during_period' then
                max(value) filter (where is_last_in_period)
            when 'markup_percentage' then sum(value)
        end as quantity

    from ordered

    group by 1, 2, 3

),

-- Stateful aggregations have a quantity in every period of the customer,
-- with or without events in it; the others only where there were events.
final as (

    select
        coalesce(stateful.subscription_id, period_aggregates.subscription_id)
            as subscription_id,
        coalesce(stateful.event_name, period_aggregates.event_name)
            as event_name,
        coalesce(stateful.period_start, period_aggregates.period_start)
            as period_start,
        coalesce(stateful.aggregation, period_aggregates.aggregation)
            as aggregation,
        coalesce(stateful.quantity, period_aggregates.quantity) as quantity,
        coalesce(period_aggregates.count_events, 0) as count_events,
        coalesce(period_aggregates.total_value, 0) as total_value

    from period_aggregates

    full outer join stateful
        on period_aggregates.subscription_id = stateful.subscription_id
        and period_aggregates.event_name = stateful.event_name
        and period_aggregates.period_start = stateful.period_start

)

select * from final
