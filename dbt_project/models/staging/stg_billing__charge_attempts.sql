with

source as (

    select * from {{ source('billing', 'charge_attempts') }}

),

renamed as (

    select
        ---------- ids
        idempotency_key as charge_attempt_id,
        invoice_id,
        payment_method_id,
        gateway_charge_id,

        ---------- dimensions
        attempt_no,
        status as outcome,
        failure_code,
        currency,

        ---------- measures
        amount_minor,

        ---------- timestamps
        attempted_for,
        created_at,
        resolved_at

    from source

)

select * from renamed
