-- SPEC §6: an invoice's credits are what the grants gave it, each recorded
-- once in the credit ledger. Returns the invoices where the two differ.
with

applications as (

    select
        invoice_id,
        sum(amount_minor) as applied_minor

    from {{ ref('stg_billing__credit_applications') }}

    group by 1

),

compared as (

    select
        invoices.invoice_id,
        invoices.credits_minor,
        coalesce(applications.applied_minor, 0) as applied_minor

    from {{ ref('fct_invoices') }} as invoices

    left join applications
        on invoices.invoice_id = applications.invoice_id

)

select * from compared

where credits_minor != applied_minor
