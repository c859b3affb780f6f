with

source as (

    select * from {{ source('app', 'tax_rates') }}

),

renamed as (

    select
        ---------- ids
        tax_rate_id,

        ---------- dimensions
        display_name,
        jurisdiction,
        inclusive,

        ---------- measures
        percentage

    from source

)

select * from renamed
