{#
    Usage a hard limit left unbilled (SPEC §15): the rated lines whose usage
    went past the limit. The invoice line shows the same units in its detail
    (over_limit_units).
#}
with

rated as (

    select * from {{ ref('int_usage_lines__rated') }}

    where over_limit_units > 0

),

periods as (

    select * from {{ ref('int_subscription_periods') }}

),

final as (

    select
        {{ invoice_id('rated.subscription_id', 'rated.period_start') }}
            as invoice_id,
        periods.customer_id,
        rated.subscription_id,
        rated.plan_id,
        rated.event_name,
        periods.period_start,
        periods.period_end,
        periods.is_closed,
        rated.usage_quantity,
        rated.usage_limit,
        rated.quantity as billed_quantity,
        rated.over_limit_units

    from rated

    inner join periods
        on
            rated.subscription_id = periods.subscription_id
            and rated.period_start = periods.period_start

)

select * from final
