with

source as (

    select * from {{ source('app', 'coupon_redemptions') }}

),

renamed as (

    select
        ---------- ids
        redemption_id,
        coupon_id,
        customer_id,
        subscription_id,

        ---------- timestamps
        redeemed_at

    from source

)

select * from renamed
