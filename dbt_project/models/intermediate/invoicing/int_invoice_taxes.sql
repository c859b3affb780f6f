with

totals as (

    select * from {{ ref('int_invoice_totals') }}

),

customer_tax_rates as (

    select * from {{ ref('stg_app__customer_tax_rates') }}

),

tax_rates as (

    select * from {{ ref('stg_app__tax_rates') }}

),

-- SPEC §12 step 4: one tax per rate the customer names, each on the same
-- taxable amount (the result of step 3), rounded once to the minor unit.
-- Exclusive: percentage of it, added to the total. Inclusive: the share of
-- it the prices already contain, p / (100 + p), shown and not added.
-- Exempt and reverse-charge customers, and a taxable amount of 0 or less,
-- get none.
final as (

    select
        totals.invoice_id,
        customer_tax_rates.rate_no,
        tax_rates.tax_rate_id,
        tax_rates.display_name,
        tax_rates.jurisdiction,
        tax_rates.percentage,
        tax_rates.inclusive,
        totals.currency,
        totals.taxable_minor,
        {{ to_minor_units(divide(
            'totals.taxable_minor * tax_rates.percentage',
            'case when tax_rates.inclusive'
            ~ ' then 100 + tax_rates.percentage else 100 end'
        ), '0') }} as tax_minor

    from totals

    inner join customer_tax_rates
        on totals.customer_id = customer_tax_rates.customer_id

    inner join tax_rates
        on customer_tax_rates.tax_rate_id = tax_rates.tax_rate_id

    where
        totals.tax_exempt = 'none'
        and totals.taxable_minor > 0

)

select * from final
