with

source as (

    select * from {{ source('app', 'plan_charge_tiers') }}

),

renamed as (

    select
        ---------- ids
        plan_id,
        event_name,
        tier,

        ---------- measures
        up_to,
        unit_price,
        flat_fee

    from source

)

select * from renamed
