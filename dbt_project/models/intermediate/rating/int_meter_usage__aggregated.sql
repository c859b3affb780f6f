with

events as (

    select * from {{ ref('int_usage_events__attributed') }}

),

-- SPEC §4 `sum` with `set`: a set replaces the running total, so only the
-- last set of the period and the increments after it count. Events are
-- ordered by occurred_at, ingested_at, reference.
ordered as (

    select
        *,

        count(*) filter (where action = 'set') over (
            partition by subscription_id, event_name, period_start
            order by occurred_at desc, ingested_at desc, reference desc
            rows between unbounded preceding and current row
        ) as sets_at_or_after

    from events

),

counted_towards_sum as (

    select
        *,

        sets_at_or_after = 0
            or (action = 'set' and sets_at_or_after = 1) as is_in_running_total

    from ordered

),

aggregated as (

    select
        subscription_id,
        event_name,
        period_start,
        min(aggregation) as aggregation,
        count(*) as count_events,

        case min(aggregation)
            when 'count' then count(*)
            when 'sum' then
                coalesce(sum(value) filter (where is_in_running_total), 0)
            when 'markup_percentage' then sum(value)
        end as quantity,

        sum(value) as total_value

    from counted_towards_sum

    group by 1, 2, 3

)

select * from aggregated
