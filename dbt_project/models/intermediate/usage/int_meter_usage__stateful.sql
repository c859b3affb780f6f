{#
    Stateful usage per subscription × meter × period, measured from the
    state segments. Incremental (docs/incremental.md): a run measures again
    - the periods ending after each changed state's change_from (all of the
      customer's periods when the state is new, or gone: a customer with
      state has a row in every period, events or not);
    - the open periods, whose quantity runs up to as_of: every period ending
      after the earlier of this run's as_of and the last run's.
    A replaced group left without state is deleted.
#}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace',
        unique_key=['subscription_id', 'event_name', 'period_start'],
        indexes=[
            {
                'columns': ['subscription_id', 'event_name', 'period_start'],
                'unique': true,
            },
            {'columns': ['customer_id', 'event_name', 'period_end']},
            {'columns': ['period_end']},
        ],
    )
}}

-- depends_on: {{ ref('int_meter_state__changed') }}
-- depends_on: {{ source('usage_pipeline', 'checkpoint') }}

{% if is_incremental() %}
    {%- set last_as_of = usage_watermark("max(as_of)") -%}
    {#- the periods still open at the last run or at this one -#}
    {%- set open_after = "least('" ~ last_as_of ~ "'::timestamptz, " ~ as_of() ~ ")"
        if last_as_of else "'-infinity'::timestamptz" -%}
{% endif %}

with

-- NOTE: "not materialized": read by index for the touched periods only.
segments as not materialized (

    select * from {{ ref('int_meter_state__segments') }}

),

periods as (

    select * from {{ ref('int_subscription_periods') }}

),

-- Every customer × meter with state: each state's last segment lasts for
-- ever. Every period of their subscriptions gets a row, so an empty period
-- still carries the state (SPEC §4).
customer_meters as (

    select distinct
        customer_id,
        event_name,
        aggregation

    from segments

    where segment_end = 'infinity'

),

{% if is_incremental() %}

changed_states as (

    select * from {{ ref('int_meter_state__changed') }}

),

-- A state that began before change_from was there before the run and still
-- is: the periods before change_from keep their rows. Otherwise the state is
-- new or gone, and so are the customer's rows in every period.
measured_from as (

    select
        changed_states.customer_id,
        changed_states.event_name,

        case
            when exists (
                select 1
                from segments
                where segments.customer_id = changed_states.customer_id
                    and segments.event_name = changed_states.event_name
                    and segments.segment_start < changed_states.change_from
            ) then changed_states.change_from
            else '-infinity'::timestamptz
        end as period_end_after

    from changed_states

),

{% endif %}

-- The periods to measure: all of them in a full build; in an incremental
-- run those after a changed state's change_from, and the open ones.
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

    {% if is_incremental() %}
    left join measured_from
        on customer_meters.customer_id = measured_from.customer_id
        and customer_meters.event_name = measured_from.event_name

    where periods.period_end > measured_from.period_end_after
        or periods.period_end > {{ open_after }}
    {% endif %}

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
        extract(
            epoch from
            least(segments.segment_end, period_meters.period_end, {{ as_of() }})
            - greatest(segments.segment_start, period_meters.period_start)
        ) as overlap_seconds

    from period_meters

    {% if is_incremental() %}
    -- NOTE: "offset 0" keeps PostgreSQL from flattening this into a hash join
    -- over every segment ever: each period a run measures reads its own
    -- segments by index. (A full build measures every period: there the
    -- hash join is the right plan.)
    cross join lateral (
        select *
        from segments
        where segments.customer_id = period_meters.customer_id
            and segments.event_name = period_meters.event_name
            and segments.segment_end > period_meters.period_start
            and segments.segment_start < period_meters.period_end
        offset 0
    ) as segments
    {% else %}
        inner join segments
            on
                period_meters.customer_id = segments.customer_id
                and period_meters.event_name = segments.event_name
                and period_meters.period_end > segments.segment_start
                and period_meters.period_start < segments.segment_end
    {% endif %}

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
            when 'last_ever'
                then
                    coalesce(
                        max(state_value) filter (
                            where segment_end >= period_end
                        ),
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

),

final as (

    select
        period_meters.subscription_id,
        period_meters.event_name,
        period_meters.period_start,
        period_meters.aggregation,
        coalesce(aggregated.quantity, 0) as quantity,
        period_meters.customer_id,
        period_meters.period_end

    from period_meters

    left join aggregated
        on
            period_meters.subscription_id = aggregated.subscription_id
            and period_meters.event_name = aggregated.event_name
            and period_meters.period_start = aggregated.period_start

)

{% if is_incremental() %},

-- Every group measured again replaces its row; the replaced rows without a
-- new one (a period gone, a state gone) are deleted.
replaced as (

    select
        existing.subscription_id,
        existing.event_name,
        existing.period_start

    from {{ this }} as existing

    inner join measured_from
        on existing.customer_id = measured_from.customer_id
        and existing.event_name = measured_from.event_name
        and existing.period_end > measured_from.period_end_after

    union

    select
        subscription_id,
        event_name,
        period_start

    from {{ this }}

    where period_end > {{ open_after }}

)

select *, false as _is_tombstone from final

union all

select
    subscription_id,
    event_name,
    period_start,
    null::text as aggregation,
    null::numeric as quantity,
    null::text as customer_id,
    null::timestamptz as period_end,
    true as _is_tombstone

from replaced

{% else %}

    select * from final

{% endif %}
