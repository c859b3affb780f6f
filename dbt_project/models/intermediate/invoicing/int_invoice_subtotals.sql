with

closed_periods as (

    select * from {{ ref('int_subscription_periods__awaiting_invoice') }}

    where is_closed

),

plans as (

    select * from {{ ref('stg_app__plans') }}

),

currencies as (

    select * from {{ ref('currencies') }}

),

lines as (

    select * from {{ ref('int_invoice_lines__charged') }}

),

line_totals as (

    select
        invoice_id,
        sum(amount_minor) as subtotal_minor,
        bool_or(amount_minor is null) as is_out_of_range

    from lines

    group by 1

),

-- SPEC §12 step 1: the subtotal is the sum of the rounded base-fee, usage
-- and adjustment lines. A line beyond what a line holds leaves it unknown
-- (null): the draft is held, and nothing is discounted or taxed.
final as (

    select
        {{ invoice_id(
            'closed_periods.subscription_id', 'closed_periods.period_start'
        ) }} as invoice_id,
        closed_periods.customer_id,
        closed_periods.subscription_id,
        closed_periods.plan_id,
        closed_periods.period_start,
        closed_periods.period_end,
        closed_periods.period_seconds,
        closed_periods.regular_seconds,
        plans.currency,
        currencies.minor_unit,
        coalesce(line_totals.is_out_of_range, false) as is_out_of_range,
        case
            when not coalesce(line_totals.is_out_of_range, false) then
                coalesce(line_totals.subtotal_minor, 0)::bigint
        end as subtotal_minor

    from closed_periods

    inner join plans
        on closed_periods.plan_id = plans.plan_id

    inner join currencies
        on plans.currency = currencies.currency

    left join line_totals
        on
            {{ invoice_id(
                'closed_periods.subscription_id', 'closed_periods.period_start'
            ) }} = line_totals.invoice_id

)

select * from final
