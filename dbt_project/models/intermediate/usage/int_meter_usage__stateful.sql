with

segments as (

    select * from {{ ref('int_meter_state__segments') }}

),

periods as (

    select * from {{ ref('int_subscription_periods') }}

),

-- Every period of every subscription of a customer who has state for the
-- meter, so an empty period still carries the state (SPEC §4).
customer_meters as (

    select distinct
        customer_id,
        event_name,
        aggregation

    from segments

),

period_meters as (

    select
        periods.subscription_id,
        periods.customer_id,
        periods.period_start,
        periods.period_end,
        customer_meters.event_name,
        customer_meters.aggregation

    from periods

    inner join customer_meters
        on periods.customer_id = customer_meters.customer_id

),

-- The segments overlapping each period, with the seconds they overlap it.
overlapping_segments as (

    select
        period_meters.subscription_id,
        period_meters.event_name,
        period_meters.period_start,
        period_meters.period_end,
        period_meters.aggregation,
        segments.state_value,
        segments.segment_end,

        -- an open period counts up to the run's as_of: usage so far
        extract(epoch from
            least(segments.segment_end, period_meters.period_end, {{ as_of() }})
            - greatest(segments.segment_start, period_meters.period_start)
        ) as overlap_seconds

    from period_meters

    inner join segments
        on period_meters.customer_id = segments.customer_id
        and period_meters.event_name = segments.event_name
        and segments.segment_start < period_meters.period_end
        and segments.segment_end > period_meters.period_start

),

-- last_ever: the state in force at the period's end (the last event with
-- occurred_at < period_end). time_duration: hours the resources were on.
-- weighted_sum: the gauge's time-weighted average over the (partial) period.
aggregated as (

    select
        subscription_id,
        event_name,
        period_start,
        min(aggregation) as aggregation,

        case min(aggregation)
            when 'last_ever' then
                coalesce(
                    max(state_value) filter (where segment_end >= period_end),
                    0
                )
            when 'time_duration' then {{ divide(
                'coalesce(sum(overlap_seconds) filter (where state_value = 1 and overlap_seconds > 0), 0)',
                '3600'
            ) }}
            when 'weighted_sum' then
                {{ divide(
                    'coalesce(sum(state_value * overlap_seconds) filter (where overlap_seconds > 0), 0)',
                    'nullif(extract(epoch from least(min(period_end), ' ~ as_of() ~ ') - period_start), 0)'
                ) }}
        end as quantity

    from overlapping_segments

    group by 1, 2, 3

)

select
    period_meters.subscription_id,
    period_meters.event_name,
    period_meters.period_start,
    period_meters.aggregation,
    coalesce(aggregated.quantity, 0) as quantity

from period_meters

left join aggregated
    on period_meters.subscription_id = aggregated.subscription_id
    and period_meters.event_name = aggregated.event_name
    and period_meters.period_start = aggregated.period_start
