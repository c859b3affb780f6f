{#
    What the models downstream of the dedupe ledger have not seen yet: the
    ledger rows written since the pipeline's checkpoint (docs/incremental.md),
    each with the billing period it would fall in. Empty in a full refresh,
    which rebuilds everything anyway.
#}
{%- set processed_through = usage_watermark("max(processed_through)") -%}

with

ranked as (

    select * from {{ ref('int_usage_events__ranked') }}

    {% if flags.FULL_REFRESH %}
    where false
    {% elif processed_through %}
    where processed_at > '{{ processed_through }}'::timestamptz
    {% endif %}

),

subscriptions as (

    select * from {{ ref('stg_app__subscriptions') }}

),

periods as (

    select * from {{ ref('int_subscription_periods') }}

),

-- Every copy of a changed reference is here: the ledger rewrites them all.
-- Each comes with the billing period it would fall in were it the valid
-- winner (SPEC §2 attribution, ignoring validity): the group its old winner
-- leaves and its new winner joins (int_meter_usage__period_local).
changed as (

    select
        ranked.raw_row_id,
        ranked.reference,
        ranked.reference_rank,
        ranked.customer_id,
        ranked.event_name,
        ranked.occurred_at,
        ranked.ingested_at,
        ranked.processed_at,
        periods.subscription_id,
        periods.period_start,
        periods.period_end

    from ranked

    left join subscriptions
        on
            ranked.customer_id = subscriptions.customer_id
            and ranked.occurred_at >= subscriptions.started_at
            and ranked.occurred_at
            < coalesce(subscriptions.ended_at, 'infinity'::timestamptz)

    left join periods
        on
            subscriptions.subscription_id = periods.subscription_id
            and ranked.occurred_at >= periods.period_start
            and ranked.occurred_at < periods.period_end

)

select * from changed
