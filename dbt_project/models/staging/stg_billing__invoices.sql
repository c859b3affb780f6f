with

source as (

    select * from {{ source('billing', 'invoices') }}

),

renamed as (

    select
        ---------- ids
        invoice_id,
        invoice_number,
        customer_id,
        subscription_id,

        ---------- dimensions
        currency,
        status,
        reverse_charge,

        ---------- measures
        subtotal_minor,
        discount_minor,
        minimum_minor,
        tax_minor,
        tax_inclusive_minor,
        credits_minor,
        total_minor,

        ---------- timestamps
        period_start,
        period_end,
        issued_at,
        invoice_date,
        due_at,

        ---------- metadata
        issued_by_run,
        issued_in_backfill

    from source

)

select * from renamed
