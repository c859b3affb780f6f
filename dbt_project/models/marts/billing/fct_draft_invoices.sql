with

customers as (

    select * from {{ ref('stg_app__customers') }}

),

totals as (

    select * from {{ ref('int_invoice_totals') }}

),

lines as (

    select * from {{ ref('fct_draft_invoice_lines') }}

),

line_counts as (

    select
        invoice_id,
        count(*) as count_lines

    from lines

    group by 1

),

taxes as (

    select
        invoice_id,
        sum(tax_minor) filter (where not inclusive) as tax_minor,
        sum(tax_minor) filter (where inclusive) as tax_inclusive_minor

    from {{ ref('int_invoice_taxes') }}

    group by 1

),

-- SPEC §6: one invoice per subscription per closed period
-- (int_invoice_totals), in the plan's currency; an invoice with no lines
-- still exists (total 0, paid at once). A draft with a line beyond what a
-- line holds is held (hold_reason): it is not issued, and every other
-- customer's invoice is.
final as (

    select
        totals.invoice_id,
        totals.customer_id,
        totals.subscription_id,
        totals.plan_id,
        totals.period_start,
        totals.period_end,
        totals.currency,
        customers.collection_method,
        coalesce(line_counts.count_lines, 0)::int as count_lines,
        case when totals.is_out_of_range then 'amount_out_of_range' end
            as hold_reason,
        -- SPEC §12: total before credits = subtotal - discounts + minimum
        -- + exclusive tax; inclusive tax is inside the subtotal already
        totals.subtotal_minor,
        totals.discount_minor,
        totals.minimum_minor,
        coalesce(taxes.tax_minor, 0)::bigint as tax_minor,
        coalesce(taxes.tax_inclusive_minor, 0)::bigint as tax_inclusive_minor,
        (
            totals.subtotal_minor - totals.discount_minor
            + totals.minimum_minor + coalesce(taxes.tax_minor, 0)
        )::bigint as total_before_credits_minor,
        totals.is_reverse_charge as reverse_charge,
        -- SPEC §10: the issuing run's as_of as a date in the customer's
        -- timezone, and due net_terms_days later at local midnight
        invoice_dates.invoice_date,
        (invoice_dates.invoice_date + customers.net_terms_days)::timestamp
        at time zone customers.timezone as due_at,
        -- the drafts are this run's: they stay after it issues them
        {{ as_of() }} as drafted_as_of

    from totals

    inner join customers
        on totals.customer_id = customers.customer_id

    cross join
        lateral (
            select
                ({{ as_of() }} at time zone customers.timezone)::date
                    as invoice_date
        ) as invoice_dates

    left join line_counts
        on totals.invoice_id = line_counts.invoice_id

    left join taxes
        on totals.invoice_id = taxes.invoice_id

)

select * from final
