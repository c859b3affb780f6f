with

source as (

    select * from {{ source('billing', 'webhook_deliveries') }}

),

renamed as (

    select
        ---------- ids
        event_id,
        endpoint_id,

        ---------- dimensions
        status,
        last_error,

        ---------- measures
        attempt_count,
        attempts_before_replay,

        ---------- timestamps
        next_attempt_at,
        delivered_at

    from source

)

select * from renamed
