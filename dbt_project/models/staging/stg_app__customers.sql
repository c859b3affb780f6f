with

source as (

    select * from {{ source('app', 'customers') }}

),

renamed as (

    select
        ---------- ids
        customer_id,
        payment_method_id,
        {{ blank_as_null('stripe_customer_id') }} as stripe_customer_id,

        ---------- dimensions
        name as customer_name,
        email,
        upper(currency) as currency,
        timezone,
        collection_method,
        net_terms_days,
        tax_exempt,

        ---------- timestamps
        created_at

    from source

)

select * from renamed
