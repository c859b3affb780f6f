with

source as (

    select * from {{ source('billing', 'credit_notes') }}

),

renamed as (

    select
        ---------- ids
        credit_note_id,
        credit_note_number,
        invoice_id,
        customer_id,

        ---------- dimensions
        currency,
        method,
        reason,
        memo,
        created_by,

        ---------- measures
        amount_minor,

        ---------- timestamps
        created_at

    from source

)

select * from renamed
