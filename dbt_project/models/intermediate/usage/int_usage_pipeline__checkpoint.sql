{#
    The usage pipeline's committed state (docs/incremental.md): how far the
    models downstream of the dedupe ledger have caught up, and the catalog
    they were computed with. It is built after them (the depends_on lines),
    so dbt skips it when one of them failed, and the next run redoes that
    run's changes too. The models that read it are built before it, so they
    read it as the source usage_pipeline.checkpoint, not by ref (a cycle).
#}

-- depends_on: {{ ref('int_usage_events__validated') }}
-- depends_on: {{ ref('int_meter_usage__period_local') }}
-- depends_on: {{ ref('int_meter_usage__stateful') }}

with

ranked as (

    select * from {{ ref('int_usage_events__ranked') }}

),

fingerprints as (

    select * from {{ ref('int_usage_catalog__fingerprinted') }}

),

periods as (

    select * from {{ ref('int_subscription_periods') }}

),

subscriptions as (

    select * from {{ ref('stg_app__subscriptions') }}

),

-- Periods are generated up to the run's horizon (as_of or now), so a valid
-- event after a subscription's last period has no period yet. The earliest
-- such end is where the next run looks for events that now have one.
last_periods as (

    select
        periods.subscription_id,
        max(periods.period_end) as last_period_end

    from periods

    group by 1

),

frontier as (

    select
        coalesce(
            min(last_periods.last_period_end), 'infinity'::timestamptz
        ) as frontier_at

    from last_periods

    inner join subscriptions
        on last_periods.subscription_id = subscriptions.subscription_id

    where
        last_periods.last_period_end
        < coalesce(subscriptions.ended_at, 'infinity'::timestamptz)

),

watermark as (

    select
        'watermark' as catalog_scope,
        'usage_events' as catalog_key,
        null::text as fingerprint,
        array[]::text[] as subscription_ids,
        (
            select max(ranked.processed_at) as processed_at from ranked
        ) as processed_through,
        frontier.frontier_at,
        -- raw.usage_events' rewrite counter as billing.transform read it
        -- before this build: a later UPDATE, DELETE or TRUNCATE moves it
        {{ run_var('raw_rewrites', 'null') }}::bigint
            as raw_rewrites,
        -- the open periods' stateful usage runs up to it
        {{ as_of() }} as as_of,
        -- the layout of the incremental models' state: billing.transform
        -- rebuilds them from raw when its own differs
        {{ run_var('usage_state_format', 'null') }}::integer
            as usage_state_format

    from frontier

),

catalog as (

    select
        catalog_scope,
        catalog_key,
        fingerprint,
        subscription_ids,
        null::timestamptz as processed_through,
        null::timestamptz as frontier_at,
        null::bigint as raw_rewrites,
        null::timestamptz as as_of,
        null::integer as usage_state_format

    from fingerprints

),

final as (

    select * from watermark
    union all
    select * from catalog

)

select * from final
