{#
    What the models downstream of the dedupe ledger have not seen yet: the
    ledger rows written since the pipeline's checkpoint (docs/incremental.md).
    Empty in a full refresh, which rebuilds everything anyway.
#}
{%- set checkpoint = usage_checkpoint() -%}
{%- if execute and checkpoint is not none and not flags.FULL_REFRESH -%}
    {#- inlined, so that the planner sees an index range scan -#}
    {%- set processed_through = run_query(
        "select max(processed_through)::text from " ~ checkpoint
        ~ " where catalog_scope = 'watermark'"
    ).columns[0].values()[0] -%}
{%- endif -%}

with

ranked as (

    select * from {{ ref('int_usage_events__ranked') }}

    {% if flags.FULL_REFRESH %}
    where false
    {% elif processed_through %}
    where processed_at > '{{ processed_through }}'::timestamptz
    {% endif %}

),

-- Every copy of a changed reference is here: the ledger rewrites them all.
changed as (

    select
        raw_row_position,
        reference,
        reference_rank,
        customer_id,
        event_name,
        occurred_at,
        ingested_at,
        processed_at

    from ranked

)

select * from changed
