with

source as (

    select * from {{ source('billing', 'credit_applications') }}

),

renamed as (

    select
        ---------- ids
        grant_id,
        invoice_id,

        ---------- dimensions
        currency,

        ---------- measures
        amount_minor,

        ---------- timestamps
        applied_at

    from source

)

select * from renamed
