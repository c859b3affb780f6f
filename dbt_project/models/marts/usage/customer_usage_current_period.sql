with

periods as (

    select * from {{ ref('int_subscription_periods') }}

    where
        period_start <= {{ as_of() }}
        and {{ as_of() }} < period_end

),

so_far as (

    select * from {{ ref('int_usage_lines__current') }}

),

projected as (

    select * from {{ ref('int_usage_lines__projected') }}

),

plans as (

    select * from {{ ref('stg_app__plans') }}

),

currencies as (

    select * from {{ ref('currencies') }}

),

final as (

    select
        periods.customer_id,
        periods.subscription_id,
        periods.plan_id,
        so_far.event_name,
        so_far.display_name,
        periods.period_start,
        periods.period_end,
        {{ as_of() }} as as_of,
        plans.currency,
        so_far.pricing_model,
        -- the usage itself: a hard limit caps only what is billed
        so_far.usage_quantity as quantity,
        so_far.included_units,

        case
            when so_far.pricing_model != 'percentage'
                then greatest(so_far.included_units - so_far.usage_quantity, 0)
        end as included_units_left,

        so_far.usage_limit,
        so_far.limit_behavior,

        so_far.amount,
        {{ to_minor_units('so_far.amount', 'currencies.minor_unit') }}
            as amount_minor,
        projected.usage_quantity as projected_quantity,
        projected.amount as projected_amount,
        {{ to_minor_units('projected.amount', 'currencies.minor_unit') }}
            as projected_amount_minor

    from periods

    inner join so_far
        on
            periods.subscription_id = so_far.subscription_id
            and periods.period_start = so_far.period_start

    inner join projected
        on
            so_far.subscription_id = projected.subscription_id
            and so_far.period_start = projected.period_start
            and so_far.event_name = projected.event_name

    inner join plans
        on periods.plan_id = plans.plan_id

    inner join currencies
        on plans.currency = currencies.currency

)

select * from final
