-- SPEC §11: recognised revenue is the lines of every issued invoice that is
-- not void, less credit notes, credits shown beside it: revenue + credit
-- notes = the invoices' subtotals − discounts + minimums − the tax inclusive
-- prices contain (SPEC §12),
-- credits applied = their credits, and revenue + exclusive tax − credits =
-- the sum of the lines that add to the totals. Returns the currencies where
-- they differ.
with

revenue as (

    select
        currency,
        sum(revenue_minor + credit_notes_minor) as revenue_minor,
        sum(credits_applied_minor) as credits_minor

    from {{ ref('fct_revenue') }}

    group by 1

),

invoices as (

    select
        currency,
        sum(
            subtotal_minor - discount_minor + minimum_minor - tax_inclusive_minor
        ) as net_revenue_minor,
        sum(tax_minor) as tax_minor,
        sum(credits_minor) as credits_minor

    from {{ ref('fct_invoices') }}

    where status != 'void'

    group by 1

),

lines as (

    select
        currency,
        sum(amount_minor) filter (where adds_to_total) as amount_minor

    from {{ ref('fct_invoice_lines') }}

    where invoice_status != 'void'

    group by 1

),

compared as (

    select
        invoices.currency,
        invoices.net_revenue_minor,
        invoices.tax_minor,
        invoices.credits_minor,
        coalesce(revenue.revenue_minor, 0) as revenue_minor,
        coalesce(revenue.credits_minor, 0) as revenue_credits_minor,
        coalesce(lines.amount_minor, 0) as lines_minor

    from invoices

    left join revenue
        on invoices.currency = revenue.currency

    left join lines
        on invoices.currency = lines.currency

)

select * from compared

where
    revenue_minor != net_revenue_minor
    or revenue_credits_minor != credits_minor
    or revenue_minor + tax_minor - revenue_credits_minor != lines_minor
