with

source as (

    select * from {{ source('app', 'subscriptions') }}

),

renamed as (

    select
        ---------- ids
        subscription_id,
        customer_id,
        plan_id,

        ---------- dimensions
        billing_anchor_day,

        ---------- timestamps
        started_at,
        ended_at

    from source

)

select * from renamed
