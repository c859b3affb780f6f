with

source as (

    select * from {{ source('billing', 'credit_grants') }}

),

renamed as (

    select
        ---------- ids
        grant_id,
        origin_invoice_id,
        customer_id,

        ---------- dimensions
        currency,

        ---------- measures
        amount,

        ---------- timestamps
        granted_at,
        -- carried credit never expires (SPEC §6)
        cast(null as timestamptz) as expires_at

    from source

)

select * from renamed
