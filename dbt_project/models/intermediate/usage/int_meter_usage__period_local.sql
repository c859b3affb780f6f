{#
    Period-local usage: the aggregations computed from a period's own events
    alone. Incremental (docs/incremental.md): a run aggregates again only the
    subscription × meter × period groups its changes touch: where each copy of
    a changed reference falls, every group of a customer or meter whose
    catalog entry changed, and the groups of events that had no billing
    period yet at the last run. A touched group left without events is
    deleted.
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
        ],
    )
}}

-- depends_on: {{ ref('int_usage_events__changed') }}
-- depends_on: {{ ref('int_usage_catalog__changed') }}
-- depends_on: {{ source('usage_pipeline', 'checkpoint') }}

{% if is_incremental() %}
    {%- set frontier_at = usage_watermark(
        "min(frontier_at) filter (where frontier_at < 'infinity')"
    ) -%}
    {%- set changed_scopes = changed_catalog_scopes() -%}
    {%- set has_changed_customers = 'customer' in changed_scopes -%}
    {%- set has_changed_meters = 'meter' in changed_scopes -%}
{% endif %}

with

-- NOTE: "not materialized": read by several branches below, each by index;
-- materialized, it would be every event ever.
attributed as not materialized (

    select * from {{ ref('int_usage_events__attributed') }}

),

validated as not materialized (

    select * from {{ ref('int_usage_events__validated') }}

),

meters as (

    select * from {{ ref('stg_app__meters') }}

),

{% if is_incremental() %}

changed_events as (

    select * from {{ ref('int_usage_events__changed') }}

),

changed_catalog as (

    select * from {{ ref('int_usage_catalog__changed') }}

),

-- The group each copy of a changed reference falls in, had it been the
-- valid winner: its old winner's group loses an event, its new one gains.
-- (A customer whose catalog changed since is aggregated again as a whole.)
copy_groups as (

    select distinct
        subscription_id,
        event_name,
        period_start,
        period_end

    from changed_events

    where subscription_id is not null
        and event_name is not null

),

touched_groups as (

    select * from copy_groups

    {% if frontier_at %}
    -- Valid events after the earliest end of a subscription's last period
    -- at the last run: some of them had no period to fall in then.
    union

    select
        subscription_id,
        event_name,
        period_start,
        period_end

    from attributed

    where occurred_at >= '{{ frontier_at }}'::timestamptz
    {% endif %}

),

changed_subscriptions as (

    select distinct unnest(subscription_ids) as subscription_id

    from changed_catalog

    where catalog_scope = 'customer'

),

changed_meters as (

    select catalog_key as event_name

    from changed_catalog

    where catalog_scope = 'meter'

),

-- Every event of every touched group, read group by group through the
-- index on validated (subscription_id, occurred_at): a group knows its
-- period, so this is attribution without the periods join (same columns as
-- int_usage_events__attributed). NOTE: "offset 0" keeps PostgreSQL from
-- flattening the subquery into a merge join of the groups with every valid
-- event, which it chose on long histories.
events as (

    select touched_events.*

    from touched_groups

    cross join lateral (
        select
            validated.raw_row_id,
            validated.reference,
            validated.customer_id,
            validated.subscription_id,
            validated.plan_id,
            validated.event_name,
            validated.aggregation,
            validated.action,
            validated.value,
            validated.properties,
            validated.occurred_at,
            validated.ingested_at,
            touched_groups.period_start,
            touched_groups.period_end

        from validated

        where validated.subscription_id = touched_groups.subscription_id
            and validated.event_name = touched_groups.event_name
            and validated.occurred_at >= touched_groups.period_start
            and validated.occurred_at < touched_groups.period_end
            and validated.reject_reason is null

        offset 0
    ) as touched_events

    {% if has_changed_customers %}
    union

    select attributed.*

    from attributed

    inner join changed_subscriptions
        on attributed.subscription_id = changed_subscriptions.subscription_id
    {% endif %}

    {% if has_changed_meters %}
    union

    select attributed.*

    from attributed

    inner join changed_meters
        on attributed.event_name = changed_meters.event_name
    {% endif %}

),

{% else %}

    events as (

        select * from attributed

    ),

{% endif %}

-- SPEC §4 ordering of events: occurred_at, then ingested_at, then reference.
-- `sets_at_or_after` counts the `set` actions from an event to the period's
-- end: a set replaces the running total, so only the last set of the period
-- and the increments after it count towards a sum.
ordered as (

    select
        events.*,
        meters.aggregated_property,

        count(*) filter (where events.action = 'set') over (
            partition by
                events.subscription_id, events.event_name, events.period_start
            order by
                events.occurred_at desc,
                events.ingested_at desc,
                events.reference desc
            rows between unbounded preceding and current row
        ) as sets_at_or_after,

        row_number() over (
            partition by
                events.subscription_id, events.event_name, events.period_start
            order by
                events.occurred_at desc,
                events.ingested_at desc,
                events.reference desc
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
            when 'sum'
                then coalesce(
                    sum(value) filter (
                        where sets_at_or_after = 0
                        or (action = 'set' and sets_at_or_after = 1)
                    ),
                    0
                )
            when 'count_unique'
                then
                    count(distinct properties ->> aggregated_property)
            when 'max' then max(value)
            when 'min' then min(value)
            when 'average' then {{ divide('sum(value)', 'count(value)') }}
            when 'last_during_period'
                then
                    max(value) filter (where is_last_in_period)
            when 'markup_percentage' then sum(value)
        end as quantity

    from ordered

    group by 1, 2, 3

),

final as (

    select
        subscription_id,
        event_name,
        period_start,
        aggregation,
        quantity,
        count_events,
        total_value

    from period_aggregates

){% if is_incremental() %},

-- Every touched group is replaced: by its new aggregate, or deleted.
replaced_groups as (

    select
        subscription_id,
        event_name,
        period_start

    from touched_groups

    {% if has_changed_customers %}
    union

    select
        existing.subscription_id,
        existing.event_name,
        existing.period_start

    from {{ this }} as existing

    inner join changed_subscriptions
        on existing.subscription_id = changed_subscriptions.subscription_id
    {% endif %}

    {% if has_changed_meters %}
    union

    select
        existing.subscription_id,
        existing.event_name,
        existing.period_start

    from {{ this }} as existing

    inner join changed_meters
        on existing.event_name = changed_meters.event_name
    {% endif %}

)

select *, false as _is_tombstone from final

union all

select
    subscription_id,
    event_name,
    period_start,
    null::text as aggregation,
    null::numeric as quantity,
    null::bigint as count_events,
    null::numeric as total_value,
    true as _is_tombstone

from replaced_groups

{% else %}

    select * from final

{% endif %}
