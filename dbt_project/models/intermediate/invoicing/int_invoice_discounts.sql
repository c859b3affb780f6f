with recursive

periods as (

    select * from {{ ref('int_subscription_periods') }}

),

coupons as (

    select * from {{ ref('stg_app__coupons') }}

),

redemptions as (

    select * from {{ ref('stg_app__coupon_redemptions') }}

),

subtotals as (

    select * from {{ ref('int_invoice_subtotals') }}

),

-- SPEC §12: a redemption covers the periods that end after redeemed_at, of
-- its subscription or (subscription_id null) of every subscription of the
-- customer, counted in order of period_end across them: the first (once),
-- the first duration_in_periods (repeating) or all (forever). A period
-- counts whether or not the coupon takes anything from it.
covered_periods as (

    select
        redemptions.redemption_id,
        redemptions.redeemed_at,
        coupons.coupon_id,
        coupons.coupon_name,
        coupons.percent_off,
        coupons.amount_off,
        coupons.currency as coupon_currency,
        coupons.duration,
        coupons.duration_in_periods,
        periods.subscription_id,
        periods.period_start,
        row_number() over (
            partition by redemptions.redemption_id
            order by
                periods.period_end,
                periods.period_start,
                periods.subscription_id
        ) as period_no

    from redemptions

    inner join coupons
        on redemptions.coupon_id = coupons.coupon_id

    inner join periods
        on
            redemptions.customer_id = periods.customer_id
            and coalesce(redemptions.subscription_id, periods.subscription_id)
            = periods.subscription_id
            and redemptions.redeemed_at < periods.period_end

),

-- The redemptions that apply to each draft with a positive subtotal, in
-- redemption order; an amount coupon only to an invoice in its currency.
applicable as (

    select
        subtotals.invoice_id,
        subtotals.subtotal_minor,
        subtotals.minor_unit,
        covered_periods.redemption_id,
        covered_periods.coupon_id,
        covered_periods.coupon_name,
        covered_periods.percent_off,
        covered_periods.amount_off,
        covered_periods.period_no,
        row_number() over (
            partition by subtotals.invoice_id
            order by covered_periods.redeemed_at, covered_periods.redemption_id
        ) as redemption_no

    from subtotals

    inner join covered_periods
        on
            subtotals.subscription_id = covered_periods.subscription_id
            and subtotals.period_start = covered_periods.period_start

    where
        subtotals.subtotal_minor > 0
        and (
            covered_periods.duration = 'forever'
            or (
                covered_periods.duration = 'once'
                and covered_periods.period_no = 1
            )
            or (
                covered_periods.duration = 'repeating'
                and covered_periods.period_no
                <= covered_periods.duration_in_periods
            )
        )
        and (
            covered_periods.amount_off is null
            or covered_periods.coupon_currency = subtotals.currency
        )

),

-- Each discount takes from what the earlier ones left: a percent rounds
-- once (half away from zero) to the minor unit, an amount takes at most
-- what remains. Folded in redemption order.
applied as (

    select
        applicable.*,
        applicable.subtotal_minor as remaining_minor,
        {{ discount_minor('applicable', 'applicable.subtotal_minor') }}
            as discount_minor

    from applicable

    where applicable.redemption_no = 1

    union all

    select
        applicable.*,
        applied.remaining_minor - applied.discount_minor as remaining_minor,
        {{ discount_minor(
            'applicable', 'applied.remaining_minor - applied.discount_minor'
        ) }} as discount_minor

    from applied

    inner join applicable
        on
            applied.invoice_id = applicable.invoice_id
            and applied.redemption_no + 1 = applicable.redemption_no

),

final as (

    select
        invoice_id,
        redemption_no,
        redemption_id,
        coupon_id,
        coupon_name,
        percent_off,
        amount_off,
        period_no,
        remaining_minor,
        discount_minor::bigint as discount_minor

    from applied

)

select * from final
