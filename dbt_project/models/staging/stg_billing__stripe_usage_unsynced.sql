with

source as (

    select * from {{ source('billing', 'stripe_usage_unsynced') }}

),

renamed as (

    select
        ---------- ids
        subscription_id,
        event_name,

        ---------- dimensions
        reason,

        ---------- measures
        warehouse_quantity,
        stripe_quantity,

        ---------- timestamps
        hour_start,
        listed_for

    from source

)

select * from renamed
