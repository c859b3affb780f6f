with

adjustments as (

    select * from {{ ref('int_invoice_adjustments') }}

),

-- Re-rated differences no invoice can carry: the subscription has ended
-- and the customer has no later subscription in the original's currency.
-- Listed so an operator settles them by hand instead of losing them.
final as (

    select
        original_invoice_id,
        original_invoice_number,
        customer_id,
        original_subscription_id as subscription_id,
        original_period_start as period_start,
        original_period_end as period_end,
        currency,
        rerated_minor,
        invoiced_minor,
        adjusted_minor,
        amount_minor,
        unbilled_reason as reason

    from adjustments

    where status = 'unbilled'

)

select * from final
