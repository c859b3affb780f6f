with

customers as (

    select * from {{ ref('stg_app__customers') }}

),

subscriptions as (

    select * from {{ ref('stg_app__subscriptions') }}

),

plans as (

    select * from {{ ref('stg_app__plans') }}

),

meters as (

    select * from {{ ref('stg_app__meters') }}

),

-- Everything about a subscription that validation and billing periods read
-- (SPEC §2, §3); timestamps as epochs, so the text is the same in any
-- session time zone.
subscription_terms as (

    select
        subscriptions.customer_id,
        subscriptions.subscription_id,

        -- format() keeps a null's place (concat_ws would skip it)
        format(
            '%s|%s|%s|%s|%s|%s',
            subscriptions.subscription_id,
            subscriptions.plan_id,
            plans.billing_interval,
            extract(epoch from subscriptions.started_at),
            extract(epoch from subscriptions.ended_at),
            subscriptions.billing_anchor_day
        ) as terms

    from subscriptions

    left join plans
        on subscriptions.plan_id = plans.plan_id

),

customer_subscriptions as (

    select
        customer_id,
        array_agg(subscription_id order by subscription_id) as subscription_ids,
        string_agg(terms, ';' order by subscription_id) as terms

    from subscription_terms

    group by 1

),

customer_keys as (

    select customer_id from customers
    union
    select customer_id from subscriptions

),

customer_fingerprints as (

    select
        'customer' as catalog_scope,
        customer_keys.customer_id as catalog_key,

        md5(format(
            '%s#%s#%s',
            customers.customer_id,
            customers.timezone,
            customer_subscriptions.terms
        )) as fingerprint,

        coalesce(
            customer_subscriptions.subscription_ids, array[]::text[]
        ) as subscription_ids

    from customer_keys

    left join customers
        on customer_keys.customer_id = customers.customer_id

    left join customer_subscriptions
        on customer_keys.customer_id = customer_subscriptions.customer_id

),

-- Everything about a meter that validation and aggregation read.
meter_fingerprints as (

    select
        'meter' as catalog_scope,
        event_name as catalog_key,

        md5(format(
            '%s#%s#%s#%s',
            event_name,
            aggregation,
            is_value_read,
            aggregated_property
        )) as fingerprint,

        array[]::text[] as subscription_ids

    from meters

),

final as (

    select * from customer_fingerprints
    union all
    select * from meter_fingerprints

)

select * from final
