{#
    The customer × meter states a run carries forward again
    (docs/incremental.md), each from the earliest moment its events changed:
    int_meter_state__segments recomputes its segments from there, and
    int_meter_usage__stateful the periods ending after it. A changed catalog
    entry changes a state from its beginning ('-infinity'). Empty in a full
    refresh, which rebuilds everything.
#}
{%- set frontier_at = usage_watermark(
    "min(frontier_at) filter (where frontier_at < 'infinity')"
) -%}

with

-- NOTE: "not materialized": read only past the frontier, by index.
attributed as not materialized (

    select * from {{ ref('int_usage_events__attributed') }}

),

changed_events as (

    select * from {{ ref('int_usage_events__changed') }}

),

changed_catalog as (

    select * from {{ ref('int_usage_catalog__changed') }}

),

customers as (

    select * from {{ ref('stg_app__customers') }}

),

stateful_meters as (

    select * from {{ ref('stg_app__meters') }}

    where is_stateful

),

-- Every copy of a changed reference: where its old winner leaves a state
-- and its new winner joins one.
changed_copies as (

    select
        changed_events.customer_id,
        changed_events.event_name,
        changed_events.occurred_at as change_from

    from changed_events

    inner join stateful_meters
        on changed_events.event_name = stateful_meters.event_name

    where
        changed_events.customer_id is not null
        and changed_events.occurred_at is not null

),

{% if frontier_at %}
-- Valid events that had no billing period to fall in at the last run
-- (int_meter_usage__period_local): attributed now, they join their state.
newly_attributed as (

    select
        attributed.customer_id,
        attributed.event_name,
        attributed.occurred_at as change_from

    from attributed

    inner join stateful_meters
        on attributed.event_name = stateful_meters.event_name

    where attributed.occurred_at >= '{{ frontier_at }}'::timestamptz

),
{% endif %}

changed_customers as (

    select
        changed_catalog.catalog_key as customer_id,
        stateful_meters.event_name,
        '-infinity'::timestamptz as change_from

    from changed_catalog

    cross join stateful_meters

    where changed_catalog.catalog_scope = 'customer'

),

-- every customer: a meter that stopped being stateful loses its states too
changed_meters as (

    select
        customers.customer_id,
        changed_catalog.catalog_key as event_name,
        '-infinity'::timestamptz as change_from

    from changed_catalog

    cross join customers

    where changed_catalog.catalog_scope = 'meter'

),

changes as (

    select * from changed_copies
    {% if frontier_at %}
    union all
    select * from newly_attributed
    {% endif %}
    union all
    select * from changed_customers
    union all
    select * from changed_meters

),

final as (

    select
        customer_id,
        event_name,
        min(change_from) as change_from

    from changes

    {% if flags.FULL_REFRESH %}
    where false
    {% endif %}

    group by 1, 2

)

select * from final
