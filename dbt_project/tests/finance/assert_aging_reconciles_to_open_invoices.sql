-- SPEC §11: today's aging buckets add up to what open and payment_failed
-- invoices still owe, and its written-off row to what uncollectible ones owe,
-- per currency. The aging rebuilds each invoice's history from its charge
-- attempts; fct_invoices reads its status: they must agree on today.
with

aging as (

    select
        currency,
        sum(amount_remaining_minor) filter (
            where aging_bucket != 'written_off'
        ) as owed_minor,
        sum(amount_remaining_minor) filter (
            where aging_bucket = 'written_off'
        ) as written_off_minor

    from {{ ref('fct_receivables_aging') }}

    where is_current

    group by 1

),

invoices as (

    select
        currency,
        sum(amount_remaining_minor) filter (
            where status in ('open', 'payment_failed')
        ) as owed_minor,
        sum(amount_remaining_minor) filter (
            where status = 'uncollectible'
        ) as written_off_minor

    from {{ ref('fct_invoices') }}

    group by 1

)

select
    coalesce(aging.currency, invoices.currency) as currency,
    aging.owed_minor as aged_minor,
    invoices.owed_minor as open_minor,
    aging.written_off_minor as aged_written_off_minor,
    invoices.written_off_minor as uncollectible_minor

from aging

full outer join invoices
    on aging.currency = invoices.currency

where
    coalesce(aging.owed_minor, 0) != coalesce(invoices.owed_minor, 0)
    or coalesce(aging.written_off_minor, 0)
    != coalesce(invoices.written_off_minor, 0)
