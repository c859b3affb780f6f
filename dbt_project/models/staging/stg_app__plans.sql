with

source as (

    select * from {{ source('app', 'plans') }}

),

renamed as (

    select
        ---------- ids
        plan_id,

        ---------- dimensions
        name as plan_name,
        upper(currency) as currency,
        interval as billing_interval,
        invoiced_by,

        ---------- measures
        base_fee,
        minimum_amount

    from source

)

select * from renamed
