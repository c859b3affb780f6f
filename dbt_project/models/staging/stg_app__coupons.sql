with

source as (

    select * from {{ source('app', 'coupons') }}

),

renamed as (

    select
        ---------- ids
        coupon_id,

        ---------- dimensions
        name as coupon_name,
        upper({{ blank_as_null('currency') }}) as currency,
        duration,
        duration_in_periods,

        ---------- measures
        percent_off,
        amount_off

    from source

)

select * from renamed
