with

source as (

    select * from {{ source('app', 'meters') }}

),

renamed as (

    select
        ---------- ids
        event_name,

        ---------- dimensions
        display_name,
        description,
        aggregation,
        property as aggregated_property,
        unit,
        {{ blank_as_null('stripe_meter_event_name') }}
            as stripe_meter_event_name,

        ---------- flags
        -- SPEC §2: every aggregation but count and count_unique reads `value`
        aggregation not in ('count', 'count_unique') as is_value_read,
        -- SPEC §4: aggregations whose state carries across periods
        aggregation in ('last_ever', 'time_duration', 'weighted_sum')
            as is_stateful

    from source

)

select * from renamed
