with

source as (

    select * from {{ source('billing', 'charge_collection_schedule') }}

),

renamed as (

    select
        ---------- ids
        invoice_id,

        ---------- dimensions
        last_failure_code,

        ---------- measures
        attempts_made,
        attempts_left,

        ---------- timestamps
        last_attempted_for,
        next_attempt_from,
        gives_up_at

    from source

)

select * from renamed
