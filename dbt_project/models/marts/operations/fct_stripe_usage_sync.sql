with

sends as (

    select * from {{ ref('stg_billing__stripe_usage_sends') }}

),

unsynced as (

    select * from {{ ref('stg_billing__stripe_usage_unsynced') }}

),

-- What Stripe holds per subscription × meter: accepted and pending calls
-- count (a pending one is re-sent until answered); a refused one added
-- nothing. An hour is corrected once it holds a cancel or a correction.
sent as (

    select
        subscription_id,
        event_name,
        min(stripe_customer_id) as stripe_customer_id,
        min(stripe_event_name) as stripe_event_name,
        count(*) filter (
            where send_kind != 'cancel' and outcome = 'sent'
        ) as count_sent_events,
        count(*) filter (where outcome = 'pending') as count_pending_calls,
        count(*) filter (where outcome = 'refused') as count_refused_calls,
        count(distinct hour_start) filter (
            where send_kind in ('cancel', 'correction') and outcome = 'sent'
        ) as count_corrected_hours,
        coalesce(
            sum(quantity) filter (where outcome != 'refused'), 0
        ) as stripe_quantity,
        max(resolved_at) as last_sent_at

    from sends

    group by 1, 2

),

unsynced_hours as (

    select
        subscription_id,
        event_name,
        count(*) as count_unsynced_hours,
        sum(warehouse_quantity - stripe_quantity) as unsynced_quantity

    from unsynced

    group by 1, 2

),

final as (

    select
        coalesce(sent.subscription_id, unsynced_hours.subscription_id)
            as subscription_id,
        coalesce(sent.event_name, unsynced_hours.event_name) as event_name,
        sent.stripe_customer_id,
        sent.stripe_event_name,
        coalesce(sent.count_sent_events, 0) as count_sent_events,
        coalesce(sent.count_pending_calls, 0) as count_pending_calls,
        coalesce(sent.count_refused_calls, 0) as count_refused_calls,
        coalesce(sent.count_corrected_hours, 0) as count_corrected_hours,
        coalesce(unsynced_hours.count_unsynced_hours, 0)
            as count_unsynced_hours,
        coalesce(sent.stripe_quantity, 0) as stripe_quantity,
        coalesce(unsynced_hours.unsynced_quantity, 0) as unsynced_quantity,
        sent.last_sent_at

    from sent

    full join unsynced_hours
        on
            sent.subscription_id = unsynced_hours.subscription_id
            and sent.event_name = unsynced_hours.event_name

)

select * from final
