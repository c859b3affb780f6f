with

source as (

    select * from {{ source('billing', 'webhook_events') }}

),

renamed as (

    select
        ---------- ids
        event_id,
        subject_id,

        ---------- dimensions
        event_type,

        ---------- timestamps
        created_at,
        fanned_out_at,

        ---------- metadata
        data

    from source

)

select * from renamed
