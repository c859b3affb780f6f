{#
    The customers and meters whose catalog entry changed since the pipeline's
    checkpoint (docs/incremental.md): their events are validated and
    aggregated again. Empty in a full refresh, which rebuilds everything.
#}
{%- set checkpoint = usage_checkpoint() -%}

with

fingerprints as (

    select * from {{ ref('int_usage_catalog__fingerprinted') }}

),

checkpointed as (

    {% if checkpoint is not none %}
    select
        catalog_scope,
        catalog_key,
        fingerprint,
        subscription_ids

    from {{ checkpoint }}

    where catalog_scope in ('customer', 'meter')
    {% else %}
        select
            null::text as catalog_scope,
            null::text as catalog_key,
            null::text as fingerprint,
            null::text[] as subscription_ids

        where false
    {% endif %}

),

-- New, changed and removed entries. A changed customer's subscriptions,
-- before and after the change, are all aggregated again.
changed as (

    select
        coalesce(fingerprints.catalog_scope, checkpointed.catalog_scope)
            as catalog_scope,
        coalesce(fingerprints.catalog_key, checkpointed.catalog_key)
            as catalog_key,

        array(
            select distinct unnest(
                coalesce(fingerprints.subscription_ids, array[]::text[])
                || coalesce(checkpointed.subscription_ids, array[]::text[])
            ) as subscription_id
        ) as subscription_ids

    from fingerprints

    full outer join checkpointed
        on
            fingerprints.catalog_scope = checkpointed.catalog_scope
            and fingerprints.catalog_key = checkpointed.catalog_key

    where fingerprints.fingerprint is distinct from checkpointed.fingerprint
    {% if flags.FULL_REFRESH %}
        and false
        {% endif %}

)

select * from changed
