{#
    One row per deduped event with its reject reason. Incremental
    (docs/incremental.md): a run validates again only the winners that
    changed since the pipeline's checkpoint (new references, references whose
    winner changed) and every event of a customer or meter whose catalog
    entry changed; the rows of displaced winners are deleted.
#}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace',
        unique_key='raw_row_id',
        indexes=[
            {'columns': ['raw_row_id'], 'unique': true},
            {'columns': ['subscription_id', 'occurred_at']},
            {'columns': ['occurred_at']},
            {'columns': ['ingested_at']},
        ],
    )
}}

-- depends_on: {{ ref('int_usage_events__changed') }}
-- depends_on: {{ ref('int_usage_catalog__changed') }}

with

-- NOTE: "not materialized": read by several branches below, each by index;
-- materialized, it would be the whole history.
deduped as not materialized (

    select * from {{ ref('int_usage_events__deduped') }}

),

{% if is_incremental() %}

changed_events as (

    select * from {{ ref('int_usage_events__changed') }}

),

changed_catalog as (

    select * from {{ ref('int_usage_catalog__changed') }}

),

-- The winners to validate again: of changed references, and of every event of
-- a changed customer or meter, found by the event column that holds its key
-- (a branch only for a scope that changed: each is a separate index lookup).
rows_to_validate as (

    select raw_row_id

    from changed_events

    where reference_rank = 1

    {% set changed_scopes = changed_catalog_scopes() %}
    {% for scope, key_column in [
        ('customer', 'customer_id'), ('meter', 'event_name')
    ] if scope in changed_scopes %}
    union

    select deduped.raw_row_id

    from deduped

    inner join changed_catalog
        on deduped.{{ key_column }} = changed_catalog.catalog_key
        and changed_catalog.catalog_scope = '{{ scope }}'
    {% endfor %}

),

events as (

    select *

    from deduped

    where raw_row_id in (
        select raw_row_id from rows_to_validate
    )

),

{% else %}

    events as (

        select * from deduped

    ),

{% endif %}

customers as (

    select * from {{ ref('stg_app__customers') }}

),

meters as (

    select * from {{ ref('stg_app__meters') }}

),

subscriptions as (

    select * from {{ ref('stg_app__subscriptions') }}

),

-- SPEC §2 attribution: the subscription with
-- started_at <= occurred_at < coalesce(ended_at, infinity). Overlapping
-- subscriptions are bad input stopped by a gate; the latest start wins here so
-- that an event is never counted twice.
with_subscription as (

    select
        events.*,
        customers.customer_id as known_customer_id,
        meters.event_name as known_event_name,
        meters.aggregation,
        meters.is_value_read,
        active_subscription.subscription_id,
        active_subscription.plan_id

    from events

    left join customers
        on events.customer_id = customers.customer_id

    left join meters
        on events.event_name = meters.event_name

    left join lateral (
        select
            subscriptions.subscription_id,
            subscriptions.plan_id
        from subscriptions
        where
            subscriptions.customer_id = events.customer_id
            and subscriptions.started_at <= events.occurred_at
            and events.occurred_at
            < coalesce(subscriptions.ended_at, 'infinity'::timestamptz)
        -- the latest start wins (a column the lateral does not select)
        order by subscriptions.started_at desc -- noqa: AM06
        limit 1
    ) as active_subscription on true

),

-- SPEC §2: one reason per event; the first that applies, in this order.
validated as (

    select
        *,

        case
            when reference is null then 'missing_reference'
            when customer_id is null then 'missing_customer'
            when known_customer_id is null then 'unknown_customer'
            when known_event_name is null then 'unknown_meter'
            when occurred_at is null then 'missing_timestamp'
            when occurred_at > ingested_at + interval '5 minutes'
                then 'future_timestamp'
            when value is null and is_value_read then 'invalid_value'
            -- a value no invoice can hold: NaN, ±Infinity (PostgreSQL orders
            -- NaN above every number) or a magnitude beyond max_event_value
            when abs(value) > {{ var('max_event_value') }} then 'invalid_value'
            when value < 0 and aggregation != 'weighted_sum'
                then 'invalid_value'
            when aggregation = 'time_duration' and value not in (0, 1)
                then 'invalid_value'
            when action is not null and action not in ('increment', 'set')
                then 'invalid_action'
            when action = 'set' and aggregation != 'sum'
                then 'invalid_action'
            when subscription_id is null then 'no_active_subscription'
        end as reject_reason

    from with_subscription

),

final as (

    select
        reference,
        customer_id,
        event_name,
        value,
        properties,
        coalesce(action, 'increment') as action,
        occurred_at,
        ingested_at,
        aggregation,
        subscription_id,
        plan_id,
        reject_reason,
        raw_row_id

    from validated

)

{% if is_incremental() %}

-- A displaced winner (a copy ingested earlier arrived late) is deleted. A
-- tombstone only carries its key: its row is read back as stored (the table
-- has final's columns, it is built from final).
select *, false as _is_tombstone from final

union all

select *, true as _is_tombstone

from {{ this }}

where raw_row_id in (
    select raw_row_id from changed_events where reference_rank > 1
)

{% else %}

    select * from final

{% endif %}
