with

source as (

    select * from {{ source('billing', 'refunds') }}

),

renamed as (

    select
        ---------- ids
        refund_id,
        credit_note_id,
        invoice_id,
        gateway_charge_id,
        gateway_refund_id,

        ---------- dimensions
        status as outcome,
        failure_code,
        currency,

        ---------- measures
        amount_minor,

        ---------- timestamps
        created_at,
        resolved_at

    from source

)

select * from renamed
