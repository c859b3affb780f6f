{#
    Each pricing model reads its own fields (SPEC §5); a charge without them
    would rate to null. Tiered models need tiers.
#}

with

charges as (

    select * from {{ ref('stg_app__plan_charges') }}

),

tiers as (

    select * from {{ ref('stg_app__plan_charge_tiers') }}

)

select charges.*
from charges
where (pricing_model = 'per_unit' and unit_price is null)
    or (pricing_model = 'package' and (unit_price is null or coalesce(package_size, 0) <= 0))
    or (pricing_model = 'percentage' and percentage_rate is null)
    or (
        pricing_model in ('graduated', 'volume')
        and not exists (
            select 1 from tiers
            where tiers.plan_id = charges.plan_id
                and tiers.event_name = charges.event_name
        )
    )
