with

source as (

    select * from {{ source('app', 'plan_charges') }}

),

renamed as (

    select
        ---------- ids
        plan_id,
        event_name,

        ---------- dimensions
        pricing_model,
        alert_thresholds,
        limit_behavior,

        ---------- measures
        unit_price,
        included_units,
        package_size,
        percentage_rate,
        fixed_fee_per_event,
        usage_limit

    from source

)

select * from renamed
