with

source as (

    select * from {{ source('billing', 'quality_results') }}

),

renamed as (

    select
        ---------- ids
        run_label,
        gate,
        check_name,

        ---------- dimensions
        expectation,

        ---------- flags
        success,
        acknowledged,

        ---------- timestamps
        checked_at,

        ---------- metadata
        observed

    from source

)

select * from renamed
