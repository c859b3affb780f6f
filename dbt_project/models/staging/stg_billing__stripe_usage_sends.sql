with

source as (

    select * from {{ source('billing', 'stripe_usage_sends') }}

),

renamed as (

    select
        ---------- ids
        identifier as stripe_send_id,
        subscription_id,
        event_name,
        cancels as cancelled_send_id,
        stripe_customer_id,

        ---------- dimensions
        kind as send_kind,
        status as outcome,
        error as refusal,
        stripe_event_name,
        version,

        ---------- measures
        value as quantity,

        ---------- timestamps
        hour_start,
        sent_for,
        created_at,
        resolved_at

    from source

)

select * from renamed
