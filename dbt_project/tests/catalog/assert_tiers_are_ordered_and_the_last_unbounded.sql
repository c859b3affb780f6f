{#
    SPEC §5: a tiered charge's tiers are ordered by up_to and only its last
    tier is unbounded. `billing catalog apply` refuses such catalogs; this
    catches rows written to raw.plan_charge_tiers by other means.
#}

with

tiers as (

    select * from {{ ref('stg_app__plan_charge_tiers') }}

),

ranked as (

    select
        *,
        row_number() over (partition by plan_id, event_name order by tier desc) = 1
            as is_last_tier,
        lag(up_to) over (partition by plan_id, event_name order by tier)
            as previous_up_to

    from tiers

)

select *
from ranked
where (is_last_tier and up_to is not null)
    or (not is_last_tier and up_to is null)
    or up_to <= previous_up_to
