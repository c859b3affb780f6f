{#
    What each customer may still use this period (SPEC §15), for the
    application to block or warn on. Indexed by customer and meter: the
    application looks one customer up, on every request if it likes.
#}
{{
    config(
        indexes=[
            {'columns': ['customer_id', 'event_name']},
        ]
    )
}}

with

usage as (

    select * from {{ ref('customer_usage_current_period') }}

),

-- A limit is reached once the usage is at it: the moment
-- billing.subscriber_limit.reached is sent (plugins/billing/usage_alerts.py).
reached as (

    select
        *,
        coalesce(quantity >= usage_limit, false) as is_limit_reached

    from usage

),

-- notify only announces the limit (SPEC §15: it "changes nothing else"), so
-- its state stays ok; a charge without a limit is always ok.
final as (

    select
        customer_id,
        subscription_id,
        plan_id,
        event_name,
        display_name,
        period_start,
        period_end,
        as_of,
        quantity as usage,
        usage_limit,

        case
            when usage_limit is not null
                then greatest(usage_limit - quantity, 0)
        end as remaining,

        limit_behavior,
        is_limit_reached,

        case
            when is_limit_reached and limit_behavior = 'hard' then 'blocked'
            when is_limit_reached and limit_behavior = 'soft' then 'over'
            else 'ok'
        end as state

    from reached

)

select * from final
