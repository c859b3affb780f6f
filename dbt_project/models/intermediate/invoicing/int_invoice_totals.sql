with

subtotals as (

    select * from {{ ref('int_invoice_subtotals') }}

),

discounts as (

    select * from {{ ref('int_invoice_discounts') }}

),

plans as (

    select * from {{ ref('stg_app__plans') }}

),

customers as (

    select * from {{ ref('stg_app__customers') }}

),

discount_totals as (

    select
        invoice_id,
        sum(discount_minor) as discount_minor

    from discounts

    group by 1

),

discounted as (

    select
        subtotals.*,
        coalesce(discount_totals.discount_minor, 0)::bigint as discount_minor,
        subtotals.subtotal_minor
        - coalesce(discount_totals.discount_minor, 0) as discounted_minor,
        -- SPEC §12 step 3: the commitment, prorated like the base fee,
        -- rounded once to the minor unit
        {{ to_minor_units(
            prorate('plans.minimum_amount', 'subtotals'),
            'subtotals.minor_unit'
        ) }} as minimum_amount_minor

    from subtotals

    inner join plans
        on subtotals.plan_id = plans.plan_id

    left join discount_totals
        on subtotals.invoice_id = discount_totals.invoice_id

),

-- SPEC §12 steps 1-3, one row per draft. Discounts, the minimum and tax
-- apply only to a positive amount: the minimum only when the discounted
-- subtotal is above 0 (a coupon that takes everything leaves nothing to
-- raise), tax only on a positive taxable amount (int_invoice_taxes).
final as (

    select
        discounted.invoice_id,
        discounted.customer_id,
        discounted.subscription_id,
        discounted.plan_id,
        discounted.period_start,
        discounted.period_end,
        discounted.currency,
        discounted.minor_unit,
        discounted.is_out_of_range,
        discounted.subtotal_minor,
        discounted.discount_minor,
        discounted.minimum_amount_minor,
        coalesce(minimums.minimum_minor, 0)::bigint as minimum_minor,
        (
            discounted.discounted_minor + coalesce(minimums.minimum_minor, 0)
        )::bigint as taxable_minor,
        customers.tax_exempt,
        customers.tax_exempt = 'reverse_charge' as is_reverse_charge

    from discounted

    inner join customers
        on discounted.customer_id = customers.customer_id

    left join
        lateral (
            select
                discounted.minimum_amount_minor
                - discounted.discounted_minor as minimum_minor
            where
                discounted.discounted_minor > 0
                and discounted.minimum_amount_minor
                > discounted.discounted_minor
        ) as minimums
        on true

)

select * from final
