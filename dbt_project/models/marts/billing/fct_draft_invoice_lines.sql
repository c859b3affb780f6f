with

charged_lines as (

    select * from {{ ref('int_invoice_lines__charged') }}

),

discounts as (

    select * from {{ ref('int_invoice_discounts') }}

    where discount_minor > 0

),

totals as (

    select * from {{ ref('int_invoice_totals') }}

),

taxes as (

    select * from {{ ref('int_invoice_taxes') }}

),

-- SPEC §12 in order: the subtotal's lines (base fee, usage, adjustments),
-- one discount per redemption applied, the minimum commitment, one tax per
-- rate, with int_invoice_lines__charged's columns. Positions keep that
-- order; line_no numbers them from 1.
lines as (

    select * from charged_lines

    union all

    select
        discounts.invoice_id,
        totals.subscription_id,
        totals.period_start,
        'discount' as kind,
        null as event_name,
        discounts.coupon_name
        || coalesce(' (' || trim_scale(discounts.percent_off) || '% off)', '')
            as description,
        null::numeric as quantity,
        null::numeric as included_units,
        null::numeric as amount,
        totals.currency,
        -discounts.discount_minor as amount_minor,
        jsonb_strip_nulls(jsonb_build_object(
            'coupon_id', discounts.coupon_id,
            'redemption_id', discounts.redemption_id,
            'percent_off', discounts.percent_off,
            'amount_off', discounts.amount_off,
            'period_no', discounts.period_no,
            'remaining_minor', discounts.remaining_minor
        )) as detail,
        2000 + discounts.redemption_no as position

    from discounts

    inner join totals
        on discounts.invoice_id = totals.invoice_id

    union all

    select
        invoice_id,
        subscription_id,
        period_start,
        'minimum_commitment' as kind,
        null as event_name,
        'Minimum commitment' as description,
        null::numeric as quantity,
        null::numeric as included_units,
        null::numeric as amount,
        currency,
        minimum_minor as amount_minor,
        jsonb_build_object(
            'minimum_amount_minor', minimum_amount_minor,
            'discounted_subtotal_minor', subtotal_minor - discount_minor
        ) as detail,
        3000 as position

    from totals

    where minimum_minor > 0

    union all

    select
        taxes.invoice_id,
        totals.subscription_id,
        totals.period_start,
        'tax' as kind,
        null as event_name,
        taxes.display_name || ' ' || trim_scale(taxes.percentage) || '%'
        || case when taxes.inclusive then ' (included)' else '' end
            as description,
        null::numeric as quantity,
        null::numeric as included_units,
        null::numeric as amount,
        taxes.currency,
        taxes.tax_minor as amount_minor,
        jsonb_build_object(
            'tax_rate_id', taxes.tax_rate_id,
            'display_name', taxes.display_name,
            'jurisdiction', taxes.jurisdiction,
            'percentage', taxes.percentage,
            'inclusive', taxes.inclusive,
            'taxable_minor', taxes.taxable_minor
        ) as detail,
        4000 + taxes.rate_no as position

    from taxes

    inner join totals
        on taxes.invoice_id = totals.invoice_id

),

final as (

    select
        invoice_id,
        row_number() over (partition by invoice_id order by position)::int
            as line_no,
        subscription_id,
        period_start,
        kind,
        event_name,
        description,
        quantity,
        included_units,
        amount,
        currency,
        amount_minor,
        detail,
        {{ adds_to_total('kind', 'detail') }} as adds_to_total

    from lines

)

select * from final
