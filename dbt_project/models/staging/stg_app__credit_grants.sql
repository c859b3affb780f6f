with

source as (

    select * from {{ source('app', 'credit_grants') }}

),

renamed as (

    select
        ---------- ids
        grant_id,
        customer_id,

        ---------- dimensions
        upper(currency) as currency,

        ---------- measures
        amount,

        ---------- timestamps
        granted_at,
        expires_at

    from source

)

select * from renamed
